"""conv2d by Winograd F(m, 3): the matrices, the op against the direct conv, its
default schedule and sampled search programs compiled, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.winograd import conv2d_winograd, transform_conv_weight, winograd_matrices
from compiler.ops.workloads import op_workload
from compiler.runtime import aligned, load
from compiler.schedule.default import default_schedule
from compiler.schedule.steps import Annotation
from compiler.search.annotate import AnnotateConfig, sample_state
from compiler.search.sketch import generate_sketches
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate
from compiler.te.expr import TensorRead
from compiler.te.traverse import walk


@pytest.mark.parametrize("m", [2, 4])
def test_matrices_compute_a_1d_correlation(m):
    a, b, g = winograd_matrices(m)
    rng = np.random.default_rng(m)
    d, w = rng.standard_normal(m + 2), rng.standard_normal(3)
    want = np.correlate(d, w, mode="valid")  # y[i] = sum_k d[i + k] w[k]
    np.testing.assert_allclose(a.T @ ((g @ w) * (b.T @ d)), want, rtol=1e-12, atol=1e-12)


def direct(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    xt, wt = te.placeholder(x.shape, name="x"), te.placeholder(w.shape, name="w")
    (out,) = evaluate([ops.conv2d_nchw(xt, wt, 1, pad)], {xt: x, wt: w})
    return out


CASES = [  # (N, C, H, W, F, pad, m)
    (1, 3, 7, 9, 5, 1, 2),
    (1, 3, 7, 9, 5, 1, 4),  # the tiles overhang the output: cropped
    (2, 4, 6, 6, 8, 0, 4),
    (1, 16, 8, 8, 16, 1, 4),
    (1, 5, 5, 11, 3, 2, 2),
]


def winograd_dag(n, c, h, w, f, pad, m) -> ComputeDAG:
    x = te.placeholder((n, c, h, w), name="data")
    u = te.placeholder((m + 2, m + 2, c, f), name="weight_winograd")
    return ComputeDAG([conv2d_winograd(x, u, pad, m)])


def inputs(case) -> tuple[np.ndarray, np.ndarray]:
    n, c, h, w, f, _, _ = case
    rng = np.random.default_rng(sum(case))
    return (
        rng.standard_normal((n, c, h, w)).astype(np.float32),
        rng.standard_normal((f, c, 3, 3)).astype(np.float32),
    )


def run_compiled(state, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    kernel = load(build(lower(state)))
    out = aligned(np.full(kernel.params[-1].shape, np.nan, np.float32))
    kernel(aligned(x), aligned(u), out)
    return out


@pytest.mark.parametrize("case", CASES, ids=str)
def test_definition_and_default_schedule_equal_the_direct_conv(case):
    x, w = inputs(case)
    pad, m = case[5], case[6]
    want = direct(x, w, pad)
    dag = winograd_dag(*case)
    u = transform_conv_weight(w, m)
    (got,) = evaluate(dag.outputs, dict(zip(dag.placeholders, (x, u))))
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, atol=2e-5 * scale)
    np.testing.assert_allclose(run_compiled(default_schedule(dag), x, u), want, atol=2e-5 * scale)


def test_conv_bias_relu_under_the_default_schedule():
    case = (1, 8, 10, 10, 16, 1, 4)
    x, w = inputs(case)
    bias = np.linspace(-1, 1, 16, dtype=np.float32).reshape(16, 1, 1)
    xt = te.placeholder(x.shape, name="data")
    ut = te.placeholder((6, 6, 8, 16), name="u")
    bt = te.placeholder(bias.shape, name="bias")
    dag = ComputeDAG([ops.relu(ops.add(conv2d_winograd(xt, ut, 1, 4), bt))])
    kernel = load(build(lower(default_schedule(dag))))
    out = aligned(np.zeros(kernel.params[-1].shape, np.float32))
    kernel(aligned(x), aligned(transform_conv_weight(w, 4)), aligned(bias), out)
    want = np.maximum(direct(x, w, 1) + bias, 0)
    np.testing.assert_allclose(out, want, atol=2e-5 * np.abs(want).max())


def test_sketches_unroll_the_constant_axes_and_sampled_programs_compute_the_conv():
    case = (1, 8, 8, 8, 16, 1, 4)
    dag = winograd_dag(*case)
    sketches = generate_sketches(dag, cores=2)
    assert sketches
    passes = ["winograd_data_rows", "winograd_data", "winograd_inverse_cols", "winograd_inverse"]
    for sk in sketches:  # every transform pass: its constant axis unrolled
        unrolled = {
            st.op.name: sum(it.annotation is Annotation.UNROLL for it in st.iters)
            for st in sk.stages
            if not st.is_placeholder
        }
        assert [unrolled[name] for name in passes] == [1, 1, 1, 1]
    x, w = inputs(case)
    u = transform_conv_weight(w, 4)
    want = direct(x, w, 1)
    rng = np.random.default_rng(0)
    checked = 0
    for i in range(40):
        state = sample_state(sketches[i % len(sketches)], rng, AnnotateConfig(cores=2))
        if state is None:
            continue
        np.testing.assert_allclose(
            run_compiled(state, x, u), want, atol=2e-5 * np.abs(want).max(), err_msg=str(state)
        )
        checked += 1
        if checked == 4:
            break
    assert checked == 4


def test_fewer_flops_than_the_direct_conv():
    wino = op_workload("conv2d_winograd", "1,64,56,56,64,3,3,1,1").flop_count
    direct_flops = op_workload("conv2d_nchwc", "1,64,56,56,64,3,3,1,1").flop_count
    assert direct_flops / 4 < wino < direct_flops / 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: winograd_matrices(3), "tile must be one of (2, 4), got 3"),
        (lambda: transform_conv_weight(np.zeros((4, 4, 5, 5)), 2), "weight must be [F, C, 3, 3]"),
        (
            lambda: op_workload("conv2d_winograd", "1,8,8,8,8,5,5,1,2"),
            "needs a 3x3 kernel and stride 1, got 5x5 stride 1",
        ),
        (
            lambda: op_workload("conv2d_winograd", "1,8,8,8,8,3,3,2,1"),
            "needs a 3x3 kernel and stride 1, got 3x3 stride 2",
        ),
        (
            lambda: conv2d_winograd(
                te.placeholder((1, 8, 8, 8)), te.placeholder((4, 4, 8, 8)), 1, 4
            ),
            "weight_winograd must be [6, 6, C, F] for tile 4",
        ),
        (
            lambda: conv2d_winograd(
                te.placeholder((1, 8, 8, 8)), te.placeholder((6, 6, 4, 8)), 1, 4
            ),
            "data has 8 channels, weight_winograd 4",
        ),
        (
            lambda: conv2d_winograd(
                te.placeholder((1, 8, 8, 8)), te.placeholder((6, 6, 8, 8)), 1, 4, filters=9
            ),
            "filters=9 does not fit weight_winograd's 8",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(OpError) as err:
        call()
    assert message in str(err.value)


def test_each_transform_pass_reads_each_input_element_through_one_shared_node():
    """A pass's rows share their reads (and scaled reads): lowering rewrites each
    once, not once per row that uses it."""
    dag = op_workload("conv2d_winograd", "1,16,8,8,16,3,3,1,1,4")
    for t in dag.tensors:
        if t.tag != tags.WINOGRAD_TRANSFORM:
            continue
        reads = [n for n in walk(t.body) if isinstance(n, TensorRead)]
        distinct = {repr(r) for r in reads}
        assert len(reads) > len(distinct)  # rows use the same elements...
        assert len({id(r) for r in reads}) == len(distinct), t.name  # ...one node each
