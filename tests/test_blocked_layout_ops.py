"""The blocked channel layout's ops (compiler/ops/conv_packed.py, 5-D pools) under the
default schedule, against the NCHW ops evaluated by the interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.errors import OpError
from compiler.runtime import empty, load
from compiler.schedule.default import default_schedule
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate

B = 16


def to_blocked(x: np.ndarray, block: int = B) -> np.ndarray:
    """NCHW -> [N, ceil(C/b), H, W, b], zeros past C."""
    n, c, h, w = x.shape
    cb = -(-c // block)
    padded = np.zeros((n, cb * block, h, w), x.dtype)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, cb, block, h, w).transpose(0, 1, 3, 4, 2))


def run(out: te.Tensor, arrays: dict) -> np.ndarray:
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[arrays[t] for t in dag.placeholders], result)
    return result


CONVS = [  # (C, H, W, F, K, stride, padding, blocked input)
    (3, 20, 20, 32, 3, 2, 1, False),  # a stem: NCHW in
    (3, 19, 19, 16, 7, 2, 3, False),
    (16, 14, 14, 96, 1, 1, 0, True),
    (24, 9, 11, 40, 3, 1, 1, True),  # channels and filters past a block: zero-padded
    (32, 8, 8, 16, 3, 2, 1, True),
]


@pytest.mark.parametrize("case", CONVS, ids=str)
def test_conv2d_blocked_matches_conv2d_nchw(case):
    c, h, w, f, k, stride, padding, blocked_in = case
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((1, c, h, w)).astype(np.float32)
    w_np = rng.standard_normal((f, c, k, k)).astype(np.float32)
    b_np = rng.standard_normal(f).astype(np.float32)
    x, wt, b = (te.placeholder(a.shape, name=n) for a, n in ((x_np, "x"), (w_np, "w"), (b_np, "b")))
    ref = ops.relu(ops.bias_add(ops.conv2d_nchw(x, wt, stride, padding), b))
    (expected,) = evaluate([ref], {x: x_np, wt: w_np, b: b_np})

    if blocked_in:
        data, wp_np = to_blocked(x_np), ops.pack_conv_weight_blocked(w_np, B)
    else:
        data, wp_np = x_np, ops.pack_conv_weight(w_np, B)
    xb, wp = te.placeholder(data.shape, name="xb"), te.placeholder(wp_np.shape, name="wp")
    bb_np = ops.pack_channel_vector(b_np, B)
    bb = te.placeholder(bb_np.shape, name="bb")
    out = ops.relu(ops.add(ops.conv2d_blocked(xb, wp, stride, padding), bb))
    got = run(out, {xb: data, wp: wp_np, bb: bb_np})
    np.testing.assert_allclose(got, to_blocked(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "case", [(32, 14, 14, 3, 1, 1), (96, 15, 15, 3, 2, 1), (24, 9, 9, 5, 2, 2)]
)
def test_depthwise_conv2d_blocked_matches_nchw(case):
    c, h, w, k, stride, padding = case
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((1, c, h, w)).astype(np.float32)
    w_np = rng.standard_normal((c, 1, k, k)).astype(np.float32)
    x, wt = te.placeholder(x_np.shape, name="x"), te.placeholder(w_np.shape, name="w")
    (expected,) = evaluate([ops.depthwise_conv2d_nchw(x, wt, stride, padding)], {x: x_np, wt: w_np})
    xb_np, wp_np = to_blocked(x_np), ops.pack_depthwise_weight(w_np, B)
    xb, wp = te.placeholder(xb_np.shape, name="xb"), te.placeholder(wp_np.shape, name="wp")
    got = run(ops.depthwise_conv2d_blocked(xb, wp, stride, padding), {xb: xb_np, wp: wp_np})
    np.testing.assert_allclose(got, to_blocked(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "pool",
    [
        lambda t: ops.max_pool2d(t, 3, 2, 1),
        lambda t: ops.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
        ops.global_avg_pool2d,
    ],
    ids=["max", "avg", "global"],
)
def test_pools_on_blocked_data_match_nchw(pool):
    x_np = np.random.default_rng(2).standard_normal((1, 32, 11, 11)).astype(np.float32)
    x = te.placeholder(x_np.shape, name="x")
    (expected,) = evaluate([pool(x)], {x: x_np})
    xb = te.placeholder((1, 2, 11, 11, B), name="xb")
    got = run(pool(xb), {xb: to_blocked(x_np)})
    np.testing.assert_allclose(got, to_blocked(expected), rtol=1e-5, atol=1e-5)


def test_unblock_channels_drops_the_padding_channels():
    x_np = np.random.default_rng(3).standard_normal((1, 24, 5, 7)).astype(np.float32)
    xb = te.placeholder((1, 2, 5, 7, B), name="xb")
    got = run(ops.unblock_channels(xb, 24), {xb: to_blocked(x_np)})
    np.testing.assert_array_equal(got, x_np)


def test_blocked_ops_refuse_mismatched_operands():
    xb = te.placeholder((1, 2, 8, 8, B), name="xb")
    with pytest.raises(OpError, match="does not fit the weight"):
        ops.conv2d_blocked(xb, te.placeholder((1, 3, 3, 3, B, B), name="w"))
    with pytest.raises(OpError, match="does not fit the weight"):
        ops.depthwise_conv2d_blocked(xb, te.placeholder((3, 3, 3, B), name="w"))
    with pytest.raises(OpError, match="do not fit 2 blocks"):
        ops.unblock_channels(xb, 40)
    with pytest.raises(OpError, match="4-D .NCHW. or 5-D"):
        ops.max_pool2d(te.placeholder((8, 8), name="x"), 2)


def test_tune_op_workloads_of_the_blocked_ops():
    from compiler.ops.workloads import op_workload

    conv = op_workload("conv2d_blocked", "1,24,56,56,144,1,1,1,0")  # PAD may be 0
    assert conv.outputs[0].shape == (1, 9, 56, 56, B)
    assert [p.shape for p in conv.placeholders] == [(1, 2, 56, 56, B), (9, 2, 1, 1, B, B)]
    depthwise = op_workload("depthwise_conv2d_blocked", "1,96,112,112,3,3,2,1")
    assert depthwise.outputs[0].shape == (1, 6, 56, 56, B)
    with pytest.raises(OpError, match="M must be positive"):
        op_workload("matmul", "0,4,4")
