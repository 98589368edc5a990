"""pad, conv2d, depthwise conv2d and pools against direct numpy references."""

import numpy as np
import pytest

from compiler import ops, te
from compiler.ops import OpError, tags
from compiler.te.evaluate import evaluate

RNG = np.random.default_rng(3)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


def pads4(padding) -> tuple[int, int, int, int]:
    p = (padding,) if isinstance(padding, int) else tuple(padding)
    return p * 4 if len(p) == 1 else p * 2 if len(p) == 2 else p  # (top, left, bottom, right)


# ------------------------------------------------------------------ references


def conv_reference(x, w, stride, padding, dilation, groups):
    """Direct convolution: explicit zero padding, strided dilated windows, groups."""
    (sh, sw), (dh, dw), (top, left, bottom, right) = stride, dilation, pads4(padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    f, cg, kh, kw = w.shape
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], f, oh, ow))
    fg = f // groups
    for g in range(groups):
        xs, ws = xp[:, g * cg : (g + 1) * cg], w[g * fg : (g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh :: sh, j * dw :: sw][:, :, :oh, :ow]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, ws[:, :, i, j])
    return out


def pool_out_size(size, k, s, lo, hi, d, ceil_mode):
    """PyTorch's pooling_output_shape (with ONNX's asymmetric pads)."""
    span = size + lo + hi - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + lo:
        out -= 1
    return out


def pool_reference(
    x, kind, kernel, stride, padding, dilation=(1, 1), ceil_mode=False, count_include_pad=False
):
    """Window by window: max of the taps in the input; average as PyTorch / onnxruntime
    (divisor: taps in the input, or, with count_include_pad, taps before the end of the
    padding)."""
    top, left, bottom, right = pads4(padding)
    n, c, h, w = x.shape
    oh = pool_out_size(h, kernel[0], stride[0], top, bottom, dilation[0], ceil_mode)
    ow = pool_out_size(w, kernel[1], stride[1], left, right, dilation[1], ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for z in range(ow):
            rows = [y * stride[0] - top + r * dilation[0] for r in range(kernel[0])]
            cols = [z * stride[1] - left + r * dilation[1] for r in range(kernel[1])]
            inside_r = [r for r in rows if 0 <= r < h]
            inside_c = [q for q in cols if 0 <= q < w]
            window = x[:, :, inside_r][:, :, :, inside_c].astype(np.float64)
            if kind == "max":
                out[:, :, y, z] = window.max(axis=(2, 3))
                continue
            if count_include_pad:
                count = sum(r < h + bottom for r in rows) * sum(q < w + right for q in cols)
            else:
                count = len(inside_r) * len(inside_c)
            out[:, :, y, z] = window.sum(axis=(2, 3)) / count
    return out


# ------------------------------------------------------------------------ pad


def test_pad():
    x = te.placeholder((2, 3, 5), name="x")
    xv = rand(2, 3, 5)
    out = ops.pad(x, (0, 1, 2), (1, 0, 3), value=-7.0)
    assert out.tag == tags.PAD
    (got,) = evaluate([out], {x: xv})
    np.testing.assert_array_equal(got, np.pad(xv, ((0, 1), (1, 0), (2, 3)), constant_values=-7))


def test_pad_errors():
    x = te.placeholder((2, 3), name="x")
    with pytest.raises(OpError, match=r"pad: pad_before must be 2 ints >= 0"):
        ops.pad(x, (1,), (1, 1))
    with pytest.raises(OpError, match=r"pad: pad_after must be 2 ints >= 0 .* got \(1, -1\)"):
        ops.pad(x, (1, 1), (1, -1))


# ----------------------------------------------------------------------- conv

CONV_CASES = [
    # (N, C, H, W), (F, KH, KW), stride, padding, dilation, groups
    ((1, 3, 7, 7), (4, 3, 3), (1, 1), 1, (1, 1), 1),
    ((2, 5, 11, 13), (7, 3, 2), (2, 3), (2, 1), (1, 1), 1),
    ((1, 4, 9, 10), (6, 3, 3), (2, 2), (0, 1, 2, 3), (2, 1), 2),
    ((1, 6, 8, 8), (6, 1, 1), (1, 1), 0, (1, 1), 3),
    ((1, 3, 5, 5), (2, 5, 5), (1, 1), 0, (1, 1), 1),
    ((1, 4, 13, 7), (4, 3, 3), (3, 2), 2, (3, 2), 4),
]


@pytest.mark.parametrize("dshape,wshape,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_nchw(dshape, wshape, stride, padding, dilation, groups):
    f, kh, kw = wshape
    x = te.placeholder(dshape, name="x")
    w = te.placeholder((f, dshape[1] // groups, kh, kw), name="w")
    xv, wv = rand(*x.shape), rand(*w.shape)
    out = ops.conv2d_nchw(x, w, stride, padding, dilation, groups)
    assert out.tag == "conv2d_nchw"
    assert [a.var.name for a in out.reduce_axes] == ["rc", "ry", "rx"]
    has_pad = any(pads4(padding))
    assert [t.tag for t in out.inputs] == ([tags.PAD] if has_pad else []) + [""] * (
        1 + (not has_pad)
    )
    (got,) = evaluate([out], {x: xv, w: wv})
    close(got, conv_reference(xv, wv, stride, padding, dilation, groups))


@pytest.mark.parametrize(
    "dshape,multiplier,kernel,stride,padding,dilation",
    [
        ((1, 5, 9, 9), 1, (3, 3), (1, 1), 1, (1, 1)),
        ((2, 3, 10, 7), 2, (3, 5), (2, 1), (1, 2), (1, 1)),
        ((1, 4, 11, 11), 3, (3, 3), (2, 2), 0, (2, 2)),
    ],
)
def test_depthwise_conv2d_nchw(dshape, multiplier, kernel, stride, padding, dilation):
    channels = dshape[1]
    x = te.placeholder(dshape, name="x")
    w = te.placeholder((channels * multiplier, 1) + kernel, name="w")
    xv, wv = rand(*x.shape), rand(*w.shape)
    out = ops.depthwise_conv2d_nchw(x, w, stride, padding, dilation)
    assert out.tag == "depthwise_conv2d_nchw"
    (got,) = evaluate([out], {x: xv, w: wv})
    close(got, conv_reference(xv, wv, stride, padding, dilation, groups=channels))


def test_conv_errors():
    x = te.placeholder((1, 16, 8, 8), name="x")
    with pytest.raises(OpError, match=r"conv2d: input has 16 channels but the weight expects 8"):
        ops.conv2d_nchw(x, te.placeholder((4, 8, 3, 3)))
    with pytest.raises(OpError, match=r"conv2d: the weight's 6 filters are not divisible by"):
        ops.conv2d_nchw(x, te.placeholder((6, 4, 3, 3)), groups=4)
    with pytest.raises(OpError, match=r"conv2d: data must be 4-D, got shape \(16, 8, 8\)"):
        ops.conv2d_nchw(te.placeholder((16, 8, 8)), te.placeholder((4, 16, 3, 3)))
    with pytest.raises(OpError, match="conv2d: the kernel height 9 .* exceeds the padded input"):
        ops.conv2d_nchw(x, te.placeholder((4, 16, 9, 3)))
    with pytest.raises(OpError, match=r"conv2d: padding must be p, \(ph, pw\) or"):
        ops.conv2d_nchw(x, te.placeholder((4, 16, 3, 3)), padding=(1, 1, 1))
    with pytest.raises(OpError, match="conv2d: stride must be a positive int or 2 positive ints"):
        ops.conv2d_nchw(x, te.placeholder((4, 16, 3, 3)), stride=0)
    with pytest.raises(OpError, match=r"depthwise_conv2d: weight must be \[C\*m, 1, KH, KW\]"):
        ops.depthwise_conv2d_nchw(x, te.placeholder((24, 1, 3, 3)))


# ---------------------------------------------------------------------- pools

POOL_CASES = [
    # (N, C, H, W), kernel, stride, padding, dilation, ceil_mode
    ((1, 2, 7, 7), (3, 3), (2, 2), 1, (1, 1), False),
    ((2, 3, 8, 11), (2, 2), (2, 2), 0, (1, 1), False),
    ((1, 2, 6, 5), (3, 3), (2, 2), 0, (1, 1), True),
    ((1, 1, 5, 5), (2, 2), (2, 2), 1, (1, 1), True),  # the last window would start in padding
    ((1, 2, 13, 9), (3, 2), (2, 3), (1, 0, 1, 1), (1, 1), True),
    ((1, 2, 10, 11), (3, 3), (1, 2), (2, 1), (2, 2), True),
    ((1, 3, 7, 6), (5, 4), (3, 1), (2, 1, 0, 2), (1, 1), False),
]


@pytest.mark.parametrize("dshape,kernel,stride,padding,dilation,ceil_mode", POOL_CASES)
def test_max_pool2d(dshape, kernel, stride, padding, dilation, ceil_mode):
    x = te.placeholder(dshape, name="x")
    xv = rand(*dshape)
    out = ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    assert out.tag == "pool_max" and out.inputs == (x,)  # masked with a select, no pad stage
    (got,) = evaluate([out], {x: xv})
    want = pool_reference(xv, "max", kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("dshape,kernel,stride,padding,dilation,ceil_mode", POOL_CASES)
def test_avg_pool2d(dshape, kernel, stride, padding, dilation, ceil_mode, count_include_pad):
    x = te.placeholder(dshape, name="x")
    xv = rand(*dshape)
    out = ops.avg_pool2d(x, kernel, stride, padding, dilation, ceil_mode, count_include_pad)
    assert out.tag == "pool_avg" and out.inputs == (x,)
    (got,) = evaluate([out], {x: xv})
    want = pool_reference(
        xv, "avg", kernel, stride, padding, dilation, ceil_mode, count_include_pad
    )
    close(got, want)


@pytest.mark.parametrize(
    "size,kernel,stride,pad,ceil_mode,expected",
    [
        (7, 3, 2, 1, False, 4),  # ResNet's stem pool: 112 -> 56 in miniature
        (6, 3, 2, 0, False, 2),
        (6, 3, 2, 0, True, 3),  # ceil((6 - 3) / 2) + 1
        (5, 2, 2, 1, True, 3),  # a 4th window would start in the right padding
        (4, 3, 2, 0, True, 2),
    ],
)
def test_pool_output_extents(size, kernel, stride, pad, ceil_mode, expected):
    x = te.placeholder((1, 1, size, size), name="x")
    out = ops.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode)
    assert out.shape == (1, 1, expected, expected)


def test_avg_pool_divisors_on_a_tensor_of_ones():
    x = te.placeholder((1, 1, 3, 3), name="x")
    ones = np.ones((1, 1, 3, 3), np.float32)
    exclude = ops.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    include = ops.avg_pool2d(x, 3, 1, 1, count_include_pad=True)
    got_exclude, got_include = evaluate([exclude, include], {x: ones})
    np.testing.assert_allclose(got_exclude, np.ones((1, 1, 3, 3)), rtol=1e-6)
    counts = np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9.0
    np.testing.assert_allclose(got_include[0, 0], counts, rtol=1e-6)


def test_avg_pool_without_border_windows_uses_a_constant_divisor():
    x = te.placeholder((1, 2, 8, 8), name="x")
    out = ops.avg_pool2d(x, 2)
    assert "0.25" in repr(out.body) and "select" not in repr(out.body)


def test_global_avg_pool2d():
    x = te.placeholder((2, 3, 7, 5), name="x")
    xv = rand(2, 3, 7, 5)
    out = ops.global_avg_pool2d(x)
    assert out.tag == "global_pool_avg" and out.shape == (2, 3, 1, 1)
    (got,) = evaluate([out], {x: xv})
    close(got, xv.astype(np.float64).mean(axis=(2, 3), keepdims=True))


def test_pool_errors():
    x = te.placeholder((1, 2, 4, 4), name="x")
    with pytest.raises(
        OpError,
        match=r"max_pool2d: data must be 4-D \(NCHW\) or 5-D \(NCHWc\), got shape \(2, 4, 4\)",
    ):
        ops.max_pool2d(te.placeholder((2, 4, 4)), 2)
    with pytest.raises(OpError, match="avg_pool2d: the kernel height 5 .* exceeds the padded"):
        ops.avg_pool2d(x, 5)
    with pytest.raises(OpError, match="max_pool2d: kernel must be a positive int or 2 positive"):
        ops.max_pool2d(x, (2, 2, 2))
    with pytest.raises(OpError, match="global_avg_pool2d: data must be float32 or float64"):
        ops.global_avg_pool2d(te.placeholder((1, 2, 4, 4), dtype="int32"))
