"""Batch axes of a tiled reduction (te/dag.py `batch_axes`) stay whole at the
outermost tile level in sampled and mutated programs."""

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.runtime import load
from compiler.schedule.state import State
from compiler.schedule.steps import Split
from compiler.search.annotate import AnnotateConfig, sample_population, splits_batch_axis
from compiler.search.mutate import mutate_tile_size
from compiler.search.sketch import generate_sketches
from compiler.te.dag import ComputeDAG, batch_axes


def batch_matmul(b=4, m=16, n=32, k=24):
    a = te.placeholder((b, m, k), name="A")
    w = te.placeholder((b, k, n), name="B")
    r = te.reduce_axis(k, name="r")
    c = te.compute(
        (b, m, n), lambda z, i, j: te.sum(a[z, i, r.var] * w[z, r.var, j], axis=r), name="C"
    )
    return ComputeDAG([c])


def test_batch_axes_are_the_axes_every_input_is_read_along():
    wino = op_workload("conv2d_winograd", "1,16,8,8,16,3,3,1,1,4")
    gemm = next(t for t in wino.tensors if t.name == "winograd_gemm")
    assert batch_axes(gemm) == (0, 1)  # e, nu: one product each
    assert batch_axes(batch_matmul().outputs[0]) == (0,)
    assert batch_axes(op_workload("matmul", "64,64,64").outputs[0]) == ()
    conv = op_workload("conv2d_nchwc", "1,32,14,14,32,3,3,1,1")
    assert all(batch_axes(t) == () for t in conv.tensors)
    x = te.placeholder((4, 100), name="x")  # one input: no batch to speak of
    assert batch_axes(ops.softmax(x)) == ()


def _batch_splits(state: State) -> list[Split]:
    out, s = [], State.initial(state.dag)
    for step in state.steps:
        if isinstance(step, Split) and splits_batch_axis(s, step):
            out.append(step)
        s = s.apply(step)
    return out


@pytest.mark.parametrize(
    "dag",
    [batch_matmul(), op_workload("conv2d_winograd", "1,16,8,8,16,3,3,1,1,4")],
    ids=["batch_matmul", "winograd"],
)
def test_sampled_and_mutated_programs_keep_batch_axes_whole_outside(dag):
    cfg = AnnotateConfig(cores=2)
    rng = np.random.default_rng(0)
    programs = sample_population(generate_sketches(dag, cores=2), 40, rng, cfg)
    assert programs
    mutated = [m for p in programs for m in [mutate_tile_size(p, rng, cfg)] if m is not None]
    assert mutated  # the other splits still mutate
    for s in programs + mutated:
        splits = _batch_splits(s)
        assert splits and all(set(st.factors) == {1} for st in splits), s.steps


def test_batch_matmul_programs_equal_numpy():
    dag = batch_matmul()
    rng = np.random.default_rng(1)
    programs = sample_population(generate_sketches(dag, cores=2), 3, rng, AnnotateConfig(cores=2))
    a = rng.standard_normal((4, 16, 24)).astype("f")
    b = rng.standard_normal((4, 24, 32)).astype("f")
    for s in programs:
        out = np.full((4, 16, 32), np.nan, "f")
        load(build(lower(s)))(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4, err_msg=str(s.steps))
