"""`Session`: an artifact loaded and run with numpy, like an onnxruntime InferenceSession.

    >>> from deploy import Session
    >>> sess = Session("runs/resnet18.artifact", threads=1)      # doctest: +SKIP
    >>> [(i.name, i.shape, i.type) for i in sess.get_inputs()]   # doctest: +SKIP
    [('input', [1, 3, 224, 224], 'tensor(float)')]
    >>> (logits,) = sess.run(None, {"input": x})                  # doctest: +SKIP

Loading checks, in order: the manifest (format, version, fields), that this CPU has
every feature the code uses, that the library and weights files are the ones the
manifest lists; then the library's own loader maps the weights and allocates the
scratch arena. Each failure is one line (DeployError). One `run` at a time per
session (a lock); inputs of the wrong name, shape or dtype are refused by name.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deploy.cpu import check_cpu, cpu_flags
from deploy.errors import DeployError
from deploy.library import load_model, open_library
from deploy.manifest import TensorSpec, read_manifest

ALIGN_BYTES = 64  # the kernels assume aligned arrays; others are copied by the C runtime

_ONNX_TYPES = {"float32": "float", "float64": "double", "float16": "float16", "int8": "int8",
               "uint8": "uint8", "int16": "int16", "int32": "int32", "int64": "int64",
               "bool": "bool"}  # fmt: skip


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: name, shape, `tensor(float)`."""

    name: str
    shape: list[int]
    type: str


class Session:
    """A loaded artifact. `threads`: threads of its parallel loops (None or 0: the
    runtime pool's default, OMP_NUM_THREADS if set, else every CPU the process may use)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        manifest = read_manifest(path)
        check_cpu(manifest.cpu_flags, manifest.cpu, cpu_flags())
        manifest.verify_files()
        self._manifest = manifest
        self._lib = open_library(manifest.directory / manifest.library)
        self._handle = load_model(self._lib, manifest.directory)
        self._finalizer = weakref.finalize(self, self._lib.sketchtune_free, self._handle)
        self.set_threads(threads or 0)
        self._inputs = manifest.inputs
        self._outputs = manifest.outputs
        self._dtypes = [np.dtype(s.dtype) for s in manifest.inputs]
        self._index = {s.name: k for k, s in enumerate(manifest.outputs)}
        self._in_ptrs = (ctypes.c_void_p * max(1, len(self._inputs)))()
        self._out_ptrs = (ctypes.c_void_p * max(1, len(self._outputs)))()
        self._run = self._lib.sketchtune_run
        self._lock = threading.Lock()

    @property
    def manifest(self) -> dict[str, Any]:
        """The artifact's whole manifest (network.json)."""
        return self._manifest.data

    def get_inputs(self) -> list[NodeArg]:
        return [_node_arg(s) for s in self._inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [_node_arg(s) for s in self._outputs]

    def set_threads(self, threads: int) -> None:
        """Run later inferences' parallel loops on `threads` threads (0: the default)."""
        if not isinstance(threads, int) or threads < 0:
            raise DeployError(f"threads must be a positive integer, got {threads!r}")
        self._lib.sketchtune_set_threads(self._handle, threads)

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, np.ndarray]
    ) -> list[np.ndarray]:
        """One inference: the outputs `output_names` (None: all, in the manifest's order)."""
        wanted = self._output_indices(output_names)
        arrays = [self._input(spec, dt, input_feed) for spec, dt in zip(self._inputs, self._dtypes)]
        if len(input_feed) != len(arrays):
            self._refuse_unknown(input_feed)
        outputs = [_aligned_empty(s) for s in self._outputs]
        with self._lock:
            for k, a in enumerate(arrays):
                self._in_ptrs[k] = a.ctypes.data
            for k, a in enumerate(outputs):
                self._out_ptrs[k] = a.ctypes.data
            if self._run(self._handle, self._in_ptrs, self._out_ptrs):
                raise DeployError(self._lib.sketchtune_last_error(self._handle).decode())
        return [outputs[k] for k in wanted]

    def _output_indices(self, names: Sequence[str] | None) -> list[int]:
        if names is None:
            return list(range(len(self._outputs)))
        try:
            return [self._index[n] for n in names]
        except (KeyError, TypeError):
            known = ", ".join(self._index)
            bad = next((n for n in names if n not in self._index), names)
            raise DeployError(f"unknown output {bad!r}; the outputs are {known}") from None

    @staticmethod
    def _input(spec: TensorSpec, dtype: np.dtype, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        try:
            array = feed[spec.name]
        except KeyError:
            raise DeployError(f"missing input {spec.name!r}") from None
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        if array.dtype != dtype or array.shape != spec.shape:
            raise DeployError(
                f"input {spec.name!r} must be {spec.dtype} {list(spec.shape)}, "
                f"got {array.dtype} {list(array.shape)}"
            )
        return array if array.flags.c_contiguous else np.ascontiguousarray(array)

    def _refuse_unknown(self, feed: Mapping[str, np.ndarray]) -> None:
        names = {s.name for s in self._inputs}
        unknown = next(n for n in feed if n not in names)
        raise DeployError(f"unknown input {unknown!r}; the inputs are {', '.join(names)}")


def _node_arg(spec: TensorSpec) -> NodeArg:
    return NodeArg(
        spec.name, list(spec.shape), f"tensor({_ONNX_TYPES.get(spec.dtype, spec.dtype)})"
    )


def _aligned_empty(spec: TensorSpec) -> np.ndarray:
    """An uninitialized array for `spec` whose data starts on a 64-byte boundary."""
    nbytes = spec.nbytes
    raw = np.empty(nbytes + ALIGN_BYTES, np.uint8)
    start = -raw.ctypes.data % ALIGN_BYTES
    return raw[start : start + nbytes].view(spec.dtype).reshape(spec.shape)
