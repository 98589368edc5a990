"""conv2d_nchwc (weights packed in output-channel blocks) under the default schedule."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import empty, load
from compiler.schedule.default import default_schedule
from compiler.schedule.stage import Attach
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate

CASES = [  # (C, H, W, F, K, stride, padding, dilation, block)
    (3, 20, 20, 16, 7, 2, 3, 1, 16),  # the padding materialized (kernel wider than 3)
    (4, 15, 15, 16, 5, 1, 2, 1, 16),
    (8, 14, 14, 32, 3, 1, 1, 1, 16),
    (5, 9, 11, 8, 3, 2, 1, 1, 8),
    (16, 7, 7, 16, 1, 1, 0, 1, 16),
    (4, 12, 12, 16, 3, 1, 2, 2, 16),
    (6, 13, 13, 20, 1, 1, 0, 1, 16),  # 20 filters: the second block is zero-padded
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_blocked_conv_matches_conv2d_nchw(case):
    c, h, w, f, k, stride, padding, dilation, block = case
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((1, c, h, w)).astype(np.float32)
    w_np = rng.standard_normal((f, c, k, k)).astype(np.float32)
    b_np = rng.standard_normal(f).astype(np.float32)
    x, wt = te.placeholder(x_np.shape, name="x"), te.placeholder(w_np.shape, name="w")
    b = te.placeholder(b_np.shape, name="b")
    ref_out = ops.relu(ops.bias_add(ops.conv2d_nchw(x, wt, stride, padding, dilation), b))
    (expected,) = evaluate([ref_out], {x: x_np, wt: w_np, b: b_np})

    wp = te.placeholder((-(-f // block), c, k, k, block), name="wp")
    conv = ops.conv2d_nchwc(x, wp, stride, padding, dilation, filters=f)
    out = ops.relu(ops.bias_add(conv, b))
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    arrays = {x: x_np, wp: ops.pack_conv_weight(w_np, block), b: b_np}
    args = [arrays[t] for t in dag.placeholders]
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*args, result)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel,padding,materialized", [(7, 3, True), (5, 2, True), (3, 1, False)])
def test_default_schedule_materializes_the_padding_of_wide_kernels(kernel, padding, materialized):
    x = te.placeholder((1, 8, 16, 16), name="x")
    wp = te.placeholder((2, 8, kernel, kernel, 16), name="wp")
    dag = ComputeDAG([ops.conv2d_nchwc(x, wp, 1, padding, 1, filters=32)])
    state = default_schedule(dag)
    (pad,) = [st for st in state.stages if st.op.name == "pad"]
    assert (pad.attach is Attach.ROOT) == materialized
