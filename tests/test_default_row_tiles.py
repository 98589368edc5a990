"""Default schedule tiles: one-row products (several vectors per row), depthwise convs on
wide images (whole rows)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.tags import has_tag
from compiler.runtime import empty, load
from compiler.schedule.default import default_schedule
from compiler.schedule.stage import Attach
from compiler.schedule.steps import Annotation
from compiler.schedule.tile_factors import row_factor, tile_rows
from compiler.target import Target
from compiler.te.dag import ComputeDAG


@pytest.mark.parametrize("batch,k,n", [((), 40, 64), ((), 33, 96), ((), 20, 48), ((2,), 17, 512)])
def test_one_row_products_match_numpy(batch, k, n):
    rng = np.random.default_rng(1)
    a_np = rng.standard_normal((*batch, 1, k)).astype(np.float32)
    b_np = rng.standard_normal((k, n)).astype(np.float32)
    bias_np = rng.standard_normal(n).astype(np.float32)
    a, b = te.placeholder(a_np.shape, name="A"), te.placeholder(b_np.shape, name="B")
    bias = te.placeholder(bias_np.shape, name="bias")
    product = ops.batch_matmul(a, b) if batch else ops.matmul(a, b)
    out = ops.relu(ops.add(product, bias))
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    values = {a: a_np, b: b_np, bias: bias_np}
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[values[t] for t in dag.placeholders], result)
    expected = np.maximum(a_np.astype(np.float64) @ b_np + bias_np, 0)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "c,h,stride,padding,kernel_size",
    [
        (4, 28, 1, 1, 3), (3, 30, 2, 1, 3), (2, 56, 1, 1, 3), (5, 17, 1, 0, 3),
        # ConvNeXt's 7x7: padded at root from 28 columns, inlined guards below
        (3, 56, 1, 3, 7), (2, 28, 1, 3, 7), (4, 14, 1, 3, 7), (2, 20, 1, 2, 5),
    ],
)  # fmt: skip
def test_depthwise_on_wide_images_matches_the_reference(c, h, stride, padding, kernel_size):
    from compiler.te.evaluate import evaluate

    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((1, c, h, h)).astype(np.float32)
    w_np = rng.standard_normal((c, 1, kernel_size, kernel_size)).astype(np.float32)
    x, w = te.placeholder(x_np.shape, name="x"), te.placeholder(w_np.shape, name="w")
    out = ops.clip(ops.depthwise_conv2d_nchw(x, w, stride, padding), 0.0, 6.0)
    (expected,) = evaluate([out], {x: x_np, w: w_np})
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[{x: x_np, w: w_np}[t] for t in dag.placeholders], result)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_depthwise_taps_feed_independent_vectors():
    """Per tap the tile's FMAs go to rows x vectors accumulators, not one dependent chain
    of KH x KW FMAs: the taps are loops outside the unrolled rows and vectors."""
    from compiler.schedule.stage import IterType

    x, w = te.placeholder((1, 96, 56, 56), name="x"), te.placeholder((96, 1, 7, 7), name="w")
    state = default_schedule(ComputeDAG([ops.depthwise_conv2d_nchw(x, w, 1, 3)]))
    conv = next(st for st in state.stages if st.op.tag == "depthwise_conv2d_nchw")
    kinds = [(it.type is IterType.REDUCE, it.annotation) for it in conv.iters]
    last_tap = max(i for i, (reduce, _) in enumerate(kinds) if reduce)
    inner = conv.iters[last_tap + 1 :]
    assert [it.annotation for it in inner] == [
        Annotation.UNROLL, Annotation.UNROLL, Annotation.VECTORIZE
    ]  # fmt: skip
    assert inner[0].extent * inner[1].extent >= 4  # rows x vectors accumulators


# Targets the default schedule is asked about (the code itself is built for this host)
TRIPLE = "x86_64-unknown-linux-gnu"
AVX512 = Target("znver4", "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl", TRIPLE)
AVX2 = Target("znver3", "+avx,+avx2,+fma,-avx512f", TRIPLE)


@pytest.mark.parametrize(
    "target,width,copied",
    [
        (AVX2, 7, True), (AVX2, 28, True),  # no mask registers: guards cost more than a copy
        (AVX512, 7, False), (AVX512, 28, False), (AVX512, 56, True),
    ],
)  # fmt: skip
def test_grouped_convs_copy_their_padding_where_guards_cost_more(
    monkeypatch, target, width, copied
):
    from compiler.schedule import analysis
    from compiler.te.evaluate import evaluate

    monkeypatch.setattr(analysis, "host_target", lambda: target)
    rng = np.random.default_rng(3)
    x_np = rng.standard_normal((1, 16, 2 * width, 2 * width)).astype(np.float32)
    w_np = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    x, w = te.placeholder(x_np.shape, name="x"), te.placeholder(w_np.shape, name="w")
    out = ops.relu(ops.conv2d_nchw(x, w, (2, 2), 1, (1, 1), 2))
    dag = ComputeDAG([out])
    s = default_schedule(dag)
    (pad,) = [st for st in s.stages if not st.is_placeholder and has_tag(st.op, "pad")]
    assert (pad.attach is Attach.ROOT) == copied
    (expected,) = evaluate([out], {x: x_np, w: w_np})
    kernel = load(build(lower(s)))
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[{x: x_np, w: w_np}[t] for t in dag.placeholders], result)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


def test_narrow_vectors_take_more_rows_with_few_registers():
    assert tile_rows(AVX2) == 6  # two ymm per 16-float row
    assert tile_rows(AVX2, vec=7) == 8  # one ymm per row: RegNet's 7 x 7 grouped convs
    assert tile_rows(AVX512, vec=7) == tile_rows(AVX512) == 8
    assert row_factor(7, tile_rows(AVX2, vec=7)) == 7


@pytest.mark.parametrize("transpose_k", [True, False])
def test_a_transposed_operand_is_copied_once_not_gathered_per_tile(transpose_k):
    """Attention scores Q K^T with K [heads, 128, 64]: its transpose, read by the product
    along its rows, is far apart in K; the default schedule copies it at root. A K
    already stored [heads, 64, 128] stays inlined (a reshape read along memory)."""
    rng = np.random.default_rng(4)
    q_np = rng.standard_normal((2, 128, 64)).astype(np.float32)
    k_shape = (2, 128, 64) if transpose_k else (2, 64, 128)
    k_np = rng.standard_normal(k_shape).astype(np.float32)
    q, k = te.placeholder(q_np.shape, name="q"), te.placeholder(k_shape, name="k")
    kt = ops.transpose(k, (0, 2, 1)) if transpose_k else ops.reshape(k, (2, 64, 128))
    out = ops.multiply(ops.batch_matmul(q, kt), 0.125)
    dag = ComputeDAG([out])
    s = default_schedule(dag)
    (stage,) = [st for st in s.stages if st.op is kt]
    assert (stage.attach is Attach.ROOT) == transpose_k
    kernel = load(build(lower(s)))
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[{q: q_np, k: k_np}[t] for t in dag.placeholders], result)
    kt_np = k_np.transpose(0, 2, 1) if transpose_k else k_np
    expected = (q_np.astype(np.float64) @ kt_np) * 0.125
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)
