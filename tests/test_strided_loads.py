"""Vector loads whose lanes are 2-4 elements apart (masked span load + shuffle) against
the reference interpreter: strided pools, depthwise convs and slices."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build, llvm_ir
from compiler.lower.lower import lower
from compiler.runtime import empty, load
from compiler.schedule.default import default_schedule
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate

CASES = {
    "maxpool_s2_ceil": lambda x: ops.max_pool2d(x, 3, stride=2, ceil_mode=True),
    "maxpool_s2_pad": lambda x: ops.max_pool2d(x, 3, stride=2, padding=1),
    "avgpool_s3": lambda x: ops.avg_pool2d(x, 3, stride=3, padding=1),
    "avgpool_s4": lambda x: ops.avg_pool2d(x, 4, stride=4),
    "slice_step2": lambda x: ops.slice(x, starts=[1], ends=[40], axes=[3], steps=[2]),
    "slice_step3": lambda x: ops.slice(x, starts=[0], ends=[41], axes=[3], steps=[3]),
    "slice_step5": lambda x: ops.slice(x, starts=[0], ends=[41], axes=[3], steps=[5]),  # gather
}


@pytest.mark.parametrize("name", CASES)
def test_strided_vector_loads(name):
    rng = np.random.default_rng(4)
    x_np = rng.standard_normal((1, 3, 37, 41)).astype(np.float32)
    x = te.placeholder(x_np.shape, name="x")
    out = CASES[name](x)
    (expected,) = evaluate([out], {x: x_np})
    func = lower(default_schedule(ComputeDAG([out])))
    result = empty(out.shape)
    result[...] = np.nan
    load(build(func))(x_np, result)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_depthwise_stride_2_uses_span_loads():
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((1, 4, 30, 30)).astype(np.float32)
    w_np = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    x, w = te.placeholder(x_np.shape, name="x"), te.placeholder(w_np.shape, name="w")
    out = ops.depthwise_conv2d_nchw(x, w, stride=2, padding=1)
    (expected,) = evaluate([out], {x: x_np, w: w_np})
    func = lower(default_schedule(ComputeDAG([out])))
    assert "llvm.masked.load" in llvm_ir(func) and "gather" not in llvm_ir(func)
    result = empty(out.shape)
    load(build(func))(x_np, w_np, result)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
