"""Helpers of the code generation tests (test_codegen*.py): run a hand-written loop-IR
function compiled for the host CPU, and make and compare arrays."""

import numpy as np

from compiler.codegen import build
from compiler.lower.loop_ir import ForKind, PrimFunc
from compiler.runtime import aligned, load

SERIAL, PARALLEL = ForKind.SERIAL, ForKind.PARALLEL
VECTORIZED, UNROLLED = ForKind.VECTORIZED, ForKind.UNROLLED
KINDS = [SERIAL, UNROLLED, VECTORIZED, PARALLEL]
RNG = np.random.default_rng(0)


def run(func: PrimFunc, *arrays: np.ndarray) -> None:
    load(build(func))(*arrays)


def rand(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return aligned(RNG.uniform(low, high, size=shape).astype(np.float32))


def zeros(*shape: int, dtype: str = "float32") -> np.ndarray:
    return aligned(np.zeros(shape, dtype=dtype))


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)
