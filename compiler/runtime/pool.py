"""The thread pool of generated parallel loops, built from its C source and loaded once.

Generated code calls `st_parallel_for(body, ctx, extent)` (compiler/codegen/parallel.py);
its implementation is `pool.c`, next to this file (the design: its header comment and
docs/threads.md). The in-process runtime compiles it with the system C compiler (`$CC`,
default gcc) once, keeps the shared library in the private cache
(`$SKETCHTUNE_CACHE/runtime/`, compiler/private_cache.py: a file anyone else could have
written is never loaded) under a key of its source and flags, loads it, and gives its
address to LLVM's in-process linker (`llvmlite.binding.add_symbol`). Artifacts compile
the same source into their model.so (models/artifact/link.py).

Without a C compiler (or if it fails) parallel loops still run, on the calling thread:
a serial `st_parallel_for` emitted with llvmlite, and one warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llvmlite.binding as llvm

from compiler.private_cache import CacheDirError, PrivateDir
from compiler.settings import settings

POOL_C = Path(__file__).with_name("pool.c")
CFLAGS = ("-O2", "-std=c11", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden")
ENTRY = "st_parallel_for"
# C type of a loop body: void body(void *ctx, int64_t begin, int64_t end)
BODY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


MAX_CALL_ARGS = 16  # pool.c's ST_MAX_CALL_ARGS


class StCall(ctypes.Structure):
    """pool.c's `st_call`: a kernel's address and its pointer arguments."""

    _fields_ = [
        ("fn", ctypes.c_void_p),
        ("nargs", ctypes.c_int64),
        ("args", ctypes.POINTER(ctypes.c_void_p)),
    ]


class PoolBuildError(RuntimeError):
    """The C compiler could not build the pool (the message has its first error)."""


@dataclass(frozen=True)
class PoolStats:
    """Counters since the process started (`st_pool_stats`)."""

    parallel_loops: int  # loops that ran on the pool
    inline_loops: int  # loops run by their caller alone (1 thread, nested, or pool busy)
    caller_chunks: int
    worker_chunks: int
    wakes: int  # parked workers woken by a system call
    caller_sleeps: int  # times a caller slept waiting for chunks a worker had taken
    workers: int  # worker threads started
    spin_ns: int  # the tunables (pool.c): an idle worker spins, then yields, then parks
    yield_ns: int
    wait_spin_ns: int  # a caller waiting for taken chunks spins, then yields, then sleeps
    wait_yield_ns: int
    chunking: int  # n > 0: n fixed chunks per thread; -g: guided, remaining / (g threads)
    moves: int  # times a worker found itself on its caller's core and moved off it


class Pool:
    """The loaded pool: the C functions, typed."""

    def __init__(self, lib: ctypes.CDLL | None) -> None:
        self.lib = lib
        self.native = lib is not None
        if lib is None:
            self._fallback = _serial_fallback()
            self.entry_address = self._fallback.get_function_address(ENTRY)
            return
        lib.st_parallel_for.argtypes = [BODY_FN, ctypes.c_void_p, ctypes.c_int64]
        lib.st_parallel_for.restype = None
        lib.st_set_num_threads.argtypes = [ctypes.c_int]
        lib.st_set_num_threads.restype = ctypes.c_int
        lib.st_get_num_threads.argtypes = []
        lib.st_get_num_threads.restype = ctypes.c_int
        lib.st_pool_configure.argtypes = [ctypes.c_int64] * 4 + [ctypes.c_int32]
        lib.st_pool_configure.restype = ctypes.c_int
        lib.st_pool_hold_workers.argtypes = [ctypes.c_int]
        lib.st_pool_hold_workers.restype = None
        lib.st_pool_stats.argtypes = [ctypes.POINTER(ctypes.c_int64)]
        lib.st_pool_stats.restype = None
        lib.st_run_calls.argtypes = [ctypes.POINTER(StCall), ctypes.c_int64]
        lib.st_run_calls.restype = ctypes.c_int64
        lib.st_run_steps.argtypes = [ctypes.POINTER(StCall), ctypes.c_int64,
                                     ctypes.POINTER(ctypes.c_int64), ctypes.c_int64]  # fmt: skip
        lib.st_run_steps.restype = ctypes.c_int64
        self.entry_address = ctypes.cast(lib.st_parallel_for, ctypes.c_void_p).value
        self._threads = 1  # the fallback's answer

    def set_num_threads(self, n: int) -> None:
        if self.lib is not None:
            self.lib.st_set_num_threads(n)

    def get_num_threads(self) -> int:
        return int(self.lib.st_get_num_threads()) if self.lib is not None else 1

    def configure(
        self,
        *,
        spin_us: float = -1,
        yield_us: float = -1,
        wait_spin_us: float = -1,
        wait_yield_us: float = -1,
        chunking: int = 0,
    ) -> None:
        """Change the pool's idle policy and chunking (benchmarks; negative or 0: keep)."""
        if self.lib is not None:
            ns = [int(us * 1000) if us >= 0 else -1
                  for us in (spin_us, yield_us, wait_spin_us, wait_yield_us)]  # fmt: skip
            self.lib.st_pool_configure(*ns, chunking)

    def hold_workers(self, on: bool) -> None:
        """Tests: workers take no chunk while held (as if preempted before starting)."""
        if self.lib is not None:
            self.lib.st_pool_hold_workers(int(on))

    def stats(self) -> PoolStats:
        out = (ctypes.c_int64 * 13)()
        if self.lib is not None:
            self.lib.st_pool_stats(out)
        return PoolStats(*(int(v) for v in out))

    def call_list(
        self, calls: Sequence[tuple[int, Sequence[int]]], widths: Sequence[int] | None = None
    ) -> Callable[[], None] | None:
        """One no-argument callable that makes `calls` ((kernel address, argument
        addresses), in order) from C, with no interpreter between two kernels; None
        without the native pool or when a kernel takes more than MAX_CALL_ARGS arrays.
        With `widths` the calls run in steps (`st_run_steps`): step s is the next
        widths[s] calls, run at the same time on the pool's threads when it has more
        than one (they must be independent). The caller keeps the kernels and the
        arrays alive."""
        if self.lib is None or any(len(args) > MAX_CALL_ARGS for _, args in calls):
            return None
        arrays = [(ctypes.c_void_p * len(args))(*args) for _, args in calls]
        table = (StCall * len(calls))(*[
            StCall(fn, len(args), ctypes.cast(array, ctypes.POINTER(ctypes.c_void_p)))
            for (fn, args), array in zip(calls, arrays)
        ])  # fmt: skip
        n = len(calls)
        if widths is None or all(w == 1 for w in widths):
            run = self.lib.st_run_calls

            def run_all() -> None:
                run(table, n)

        else:
            if sum(widths) != n or min(widths) < 1:
                raise ValueError(f"step widths {list(widths)} do not cover {n} calls")
            steps = (ctypes.c_int64 * len(widths))(*widths)
            run_steps, n_steps = self.lib.st_run_steps, len(widths)

            def run_all() -> None:
                run_steps(table, n, steps, n_steps)

        run_all.keep = (arrays, table)  # type: ignore[attr-defined]
        return run_all

    def parallel_for(self, body: object, extent: int) -> None:
        """Run a ctypes `BODY_FN` over [0, extent) on the pool (tests)."""
        if self.lib is None:
            body(None, 0, extent)  # type: ignore[operator]
        else:
            self.lib.st_parallel_for(body, None, extent)


@cache
def pool() -> Pool:
    """The process's pool, built or taken from the cache on first use, its entry point
    made resolvable for object code linked afterwards."""
    try:
        lib = _load(_library_bytes())
    except (OSError, PoolBuildError) as err:
        warnings.warn(
            f"parallel loops run on one thread: the thread pool could not be built ({err})",
            RuntimeWarning,
            stacklevel=2,
        )
        lib = None
    p = Pool(lib)
    llvm.add_symbol(ENTRY, p.entry_address)
    return p


def cache_key(source: bytes, cc: str) -> str:
    """What the library depends on: the source, the compiler command, the flags."""
    h = hashlib.sha256(source)
    h.update("\0".join([cc, *CFLAGS]).encode())
    return h.hexdigest()[:32]


def _library_bytes() -> bytes:
    cc = os.environ.get("CC", "gcc")
    source = POOL_C.read_bytes()
    name = f"pool-{cache_key(source, cc)}.so"
    try:
        with PrivateDir(settings().cache_dir / "runtime") as cache_dir:
            data = cache_dir.read(name)
            if data is None:
                data = compile_library(cc)
                cache_dir.write(name, data)
            return data
    except (OSError, CacheDirError):  # no cache we may use: build it, keep it nowhere
        return compile_library(cc)


def compile_library(cc: str) -> bytes:
    """The pool as a shared library's bytes, compiled from `POOL_C` with `cc`."""
    if shutil.which(cc) is None:
        raise PoolBuildError(f"no C compiler: {cc!r} not found (set CC)")
    with tempfile.TemporaryDirectory(prefix="sketchtune-pool-") as tmp:
        out = Path(tmp) / "pool.so"
        command = [cc, *CFLAGS, "-o", str(out), str(POOL_C)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = [ln.strip() for ln in done.stderr.splitlines() if "error" in ln]
            raise PoolBuildError(f"{cc} failed: {lines[0] if lines else done.returncode}")
        return out.read_bytes()


def _load(data: bytes) -> ctypes.CDLL:
    """dlopen the library from memory: the bytes checked are the bytes loaded."""
    fd = os.memfd_create("sketchtune-pool", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return ctypes.CDLL(f"/proc/self/fd/{fd}", mode=ctypes.RTLD_LOCAL)
    finally:
        os.close(fd)


def _serial_fallback() -> llvm.ExecutionEngine:
    """`st_parallel_for` as `body(ctx, 0, extent)`, compiled in process (no C compiler)."""
    from compiler.codegen.target import new_target_machine
    from compiler.target import host_target, init_llvm

    init_llvm()
    ir_text = f"""
        define void @{ENTRY}(ptr %body, ptr %ctx, i64 %extent) {{
          %empty = icmp sle i64 %extent, 0
          br i1 %empty, label %done, label %run
        run:
          call void %body(ptr %ctx, i64 0, i64 %extent)
          br label %done
        done:
          ret void
        }}"""
    module = llvm.parse_assembly(ir_text)
    engine = llvm.create_mcjit_compiler(module, new_target_machine(host_target()))
    engine.finalize_object()
    return engine
