"""Load an `Artifact`'s object code into this process and call it on numpy arrays.

Each kernel owns a small MCJIT engine (an empty module plus the object file);
libm symbols are resolved from the process, the thread pool's `st_parallel_for`
(compiler/runtime/pool.py) from the symbol added for it; the first load keeps
kernels' scratch in the heap between calls (compiler/runtime/heap.py). Arguments are checked
against the parameter specs; arrays that are not C-contiguous or not 64-byte
aligned (the generated code assumes both) go through an aligned temporary.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import numpy as np

from compiler.codegen.build import Artifact, ParamSpec
from compiler.codegen.target import new_target_machine
from compiler.errors import UserError
from compiler.runtime.heap import keep_scratch_in_heap
from compiler.runtime.pool import pool
from compiler.target import host_target

ALIGN_BYTES = 64


class KernelArgError(UserError):
    """The arrays passed to a kernel do not match its parameters."""


def empty(shape: Sequence[int] | int, dtype: str | np.dtype = "float32") -> np.ndarray:
    """An uninitialized C-contiguous array whose data starts on a 64-byte boundary."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dt = np.dtype(dtype)
    nbytes = max(1, int(np.prod(shape, dtype=np.int64))) * dt.itemsize
    raw = np.empty(nbytes + ALIGN_BYTES, dtype=np.uint8)
    offset = -raw.ctypes.data % ALIGN_BYTES
    return raw[offset : offset + nbytes].view(dt)[: int(np.prod(shape))].reshape(shape)


def aligned(array: np.ndarray) -> np.ndarray:
    """`array` itself if C-contiguous and 64-byte aligned, else an aligned copy."""
    if _is_ready(array):
        return array
    out = empty(array.shape, array.dtype)
    out[...] = array
    return out


def _is_ready(a: np.ndarray) -> bool:
    return a.flags.c_contiguous and a.ctypes.data % ALIGN_BYTES == 0


@dataclass(eq=False)
class Kernel:
    """A loaded kernel: `kernel(*arrays)` runs it in place on the arrays."""

    artifact: Artifact
    _engine: llvm.ExecutionEngine = field(repr=False)
    _cfunc: Callable[..., None] = field(repr=False)
    _dtypes: tuple[np.dtype, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return self.artifact.entry

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return self.artifact.params

    def __call__(self, *arrays: np.ndarray) -> None:
        self.check(arrays)
        staged = [a if _is_ready(a) else aligned(a) for a in arrays]
        self._cfunc(*(a.ctypes.data for a in staged))
        for original, copy in zip(arrays, staged):
            if copy is not original and original.flags.writeable:
                original[...] = copy

    @property
    def address(self) -> int:
        """The kernel's entry point in this process (every parameter a pointer)."""
        return int(ctypes.cast(self._cfunc, ctypes.c_void_p).value or 0)

    def bind(self, *arrays: np.ndarray) -> Callable[[], None]:
        """A no-argument call of the kernel on `arrays`, checked once: for timing loops,
        where the per-call checks would be measured too. The arrays must already be
        C-contiguous and 64-byte aligned (see `aligned`).
        """
        self.check(arrays)
        for spec, a in zip(self.params, arrays):
            if not _is_ready(a):
                raise KernelArgError(
                    f"kernel {self.name!r} parameter {spec.name!r}: bind() needs a C-contiguous,"
                    " 64-byte aligned array; pass compiler.runtime.aligned(array)"
                )
        pointers = [ctypes.c_void_p(a.ctypes.data) for a in arrays]
        cfunc, keep_alive = self._cfunc, arrays

        def call() -> None:
            cfunc(*pointers)

        call.arrays = keep_alive  # type: ignore[attr-defined]  # the memory stays valid
        call.kernel = self  # type: ignore[attr-defined]  # and so does the code it jumps to
        return call

    def check(self, arrays: Sequence[np.ndarray]) -> None:
        """Raise `KernelArgError` naming the first argument that does not fit."""
        params = self.params
        if len(arrays) != len(params):
            names = ", ".join(p.name for p in params)
            raise KernelArgError(
                f"kernel {self.name!r} takes {len(params)} arrays ({names}), got {len(arrays)}"
            )
        for spec, dt, a in zip(params, self._dtypes, arrays):
            if not isinstance(a, np.ndarray):
                raise KernelArgError(
                    f"kernel {self.name!r} parameter {spec.name!r}: expected a numpy array, "
                    f"got {type(a).__name__}"
                )
            if a.shape != spec.shape or a.dtype != dt:
                raise KernelArgError(
                    f"kernel {self.name!r} parameter {spec.name!r}: expected "
                    f"{spec.dtype}{list(spec.shape)}, got {a.dtype}{list(a.shape)}"
                )


def load(artifact: Artifact) -> Kernel:
    """Link `artifact`'s object code into this process and return the callable kernel."""
    pool()  # st_parallel_for must be resolvable before the object is linked
    keep_scratch_in_heap()  # scratch blocks are not faulted in again at every call
    tm = new_target_machine(host_target())  # the engine owns and frees it
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
    engine.add_object_file(llvm.ObjectFileRef.from_data(artifact.object_code))
    engine.finalize_object()
    address = engine.get_function_address(artifact.entry)
    if not address:
        raise RuntimeError(f"symbol {artifact.entry!r} not found in the object code")
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * len(artifact.params)))
    dtypes = tuple(np.dtype(p.dtype) for p in artifact.params)
    return Kernel(artifact, engine, proto(address), dtypes)
