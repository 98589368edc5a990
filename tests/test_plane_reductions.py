"""Reductions over whole NCHW planes (a global average pool where the activations are
not blocked: RegNet's squeeze-excitations): the default schedule fuses the plane into
one contiguous row and reduces it in vectors, when it is whole vectors."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import aligned, empty, load
from compiler.schedule.default import default_schedule
from compiler.schedule.steps import Annotation
from compiler.te.dag import ComputeDAG


def _run(dag: ComputeDAG, x: np.ndarray) -> np.ndarray:
    out = dag.outputs[0]
    got = empty(out.shape, out.dtype)
    got[...] = np.nan
    load(build(lower(default_schedule(dag))))(aligned(x), got)
    return got


@pytest.mark.parametrize(
    ("shape", "in_vectors"),
    [((2, 5, 8, 8), True), ((1, 3, 56, 56), True), ((1, 4, 14, 14), False), ((1, 4, 3, 3), False)],
)
def test_a_global_pool_over_nchw_planes(shape, in_vectors):
    dag = ComputeDAG([ops.global_avg_pool2d(te.placeholder(shape, name="x"))])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(_run(dag, x), x.mean((2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
    factored = [st for st in default_schedule(dag).stages if st.name.endswith(".rf")]
    assert bool(factored) == in_vectors  # 196 and 9 pixels: not whole vectors
    for st in factored:
        assert st.iters[-1].annotation is Annotation.VECTORIZE and st.iters[-1].extent == 16


def test_a_blocked_global_pool_keeps_its_vectors_across_channels():
    """[N, C/16, H, W, 16]: the plane is not the innermost data, the lanes are."""
    shape = (1, 2, 8, 8, 16)
    dag = ComputeDAG([ops.global_avg_pool2d(te.placeholder(shape, name="x"))])
    assert not [st for st in default_schedule(dag).stages if st.name.endswith(".rf")]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(_run(dag, x), x.mean((2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
