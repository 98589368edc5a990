"""Neural-network ops on NCHW data: pad, conv2d, depthwise conv2d (pools live in pool.py).

A convolution is a "pad" stage (only when the padding is non-zero) followed by
one reduction stage over (rc, ry, rx); stride, padding, dilation and groups
are kept in the stage's attrs for templates and reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d
from compiler.ops.shapes import (
    IntOrPair,
    as_operand,
    check_ndim,
    check_same_dtype,
    check_tensor,
    is_int,
    padding4,
    positive_ints,
    window_index,
)
from compiler.te import Expr, Tensor

__all__ = [
    "avg_pool2d",
    "conv2d_nchw",
    "depthwise_conv2d_nchw",
    "global_avg_pool2d",
    "max_pool2d",
    "pad",
]


def pad(
    data: Tensor, pad_before: Sequence[int], pad_after: Sequence[int], value: float = 0.0
) -> Tensor:
    """`data` surrounded by `value`: pad_before[k] / pad_after[k] elements on axis k.

    Example: `padded = pad(x, (0, 0, 1, 1), (0, 0, 1, 1))` pads H and W of NCHW by 1.
    """
    check_tensor("pad", "data", data)
    before = _pad_widths("pad_before", pad_before, data.ndim)
    after = _pad_widths("pad_after", pad_after, data.ndim)
    fill = as_operand("pad", value, data.dtype)
    shape = tuple(d + b + a for d, b, a in zip(data.shape, before, after))

    def body(*i: Expr) -> Expr:
        inside: list[Expr] = []
        for ik, b, a, d in zip(i, before, after, data.shape):
            if b:
                inside.append(ik >= b)
            if a:
                inside.append(ik < b + d)
        read = data[tuple(ik - b if b else ik for ik, b in zip(i, before))]
        return te.select(te.logical_and(*inside), read, fill) if inside else read

    attrs = {"pad_before": before, "pad_after": after, "value": float(value)}
    return te.compute(shape, body, name="pad", tag=tags.PAD, attrs=attrs)


def _pad_widths(arg: str, widths: Sequence[int], ndim: int) -> tuple[int, ...]:
    items = tuple(widths)
    if len(items) != ndim or not all(is_int(w) and w >= 0 for w in items):
        raise OpError(f"pad: {arg} must be {ndim} ints >= 0 (one per axis), got {widths!r}")
    return items


def _pad_spatial(data: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """NCHW data (or blocked NCHWc: axes past the fourth are not padded) padded by (top,
    left, bottom, right) with zeros; unchanged when all are 0."""
    top, left, bottom, right = pads
    if not any(pads):
        return data
    rest = (0,) * (data.ndim - 4)
    return pad(data, (0, 0, top, left, *rest), (0, 0, bottom, right, *rest))


def conv_out_extent(op: str, dim: str, padded: int, kernel: int, stride: int, dil: int) -> int:
    """Output extent of a convolution window sliding over `padded` elements."""
    span = padded - dil * (kernel - 1)
    if span < 1:
        raise OpError(
            f"{op}: the kernel {dim} {kernel} (dilation {dil}) exceeds the padded input "
            f"{dim} {padded}"
        )
    return (span - 1) // stride + 1


def _conv_geometry(
    op: str,
    data: Tensor,
    weight: Tensor,
    stride: IntOrPair,
    padding: IntOrPair,
    dilation: IntOrPair,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, int, int, int], tuple[int, int]]:
    """(stride, dilation, pads, output H and W) of a 2-D convolution, checked."""
    strides = positive_ints(op, "stride", stride, 2)
    dilations = positive_ints(op, "dilation", dilation, 2)
    pads = padding4(op, padding)
    (_, _, h, w), (_, _, kh, kw) = data.shape, weight.shape
    oh = conv_out_extent(op, "height", h + pads[0] + pads[2], kh, strides[0], dilations[0])
    ow = conv_out_extent(op, "width", w + pads[1] + pads[3], kw, strides[1], dilations[1])
    return strides, dilations, pads, (oh, ow)


def conv2d_nchw(
    data: Tensor,
    weight: Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Tensor:
    """out[N, F, OH, OW] = sum over (rc, ry, rx) of pad(data) * weight[F, C/groups, KH, KW].

    Example: `y = conv2d_nchw(x, w, stride=2, padding=1)`.
    """
    op = "conv2d"
    _check_conv_operands(op, data, weight)
    (batch, channels, _, _), (filters, group_channels, kh, kw) = data.shape, weight.shape
    _check_groups(channels, filters, group_channels, groups)
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv_geometry(op, data, weight, stride, padding, dilation)
    padded = _pad_spatial(data, pads)
    rc = te.reduce_axis(group_channels, name="rc")
    ry, rx = te.reduce_axis(kh, name="ry"), te.reduce_axis(kw, name="rx")
    filters_per_group = filters // groups

    def body(n: Expr, f: Expr, y: Expr, x: Expr) -> Expr:
        channel = rc.var if groups == 1 else (f // filters_per_group) * group_channels + rc.var
        read = padded[n, channel, window_index(y, sh, ry.var, dh), window_index(x, sw, rx.var, dw)]
        return te.sum(read * weight[f, rc.var, ry.var, rx.var], axis=(rc, ry, rx))

    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "groups": groups}
    shape = (batch, filters, oh, ow)
    return te.compute(shape, body, name="conv2d", tag=tags.CONV2D_NCHW, attrs=attrs)


def _check_conv_operands(op: str, data: Tensor, weight: Tensor) -> None:
    check_ndim(op, "data", data, 4)
    check_ndim(op, "weight", weight, 4)
    check_same_dtype(op, data, weight)


def _check_groups(channels: int, filters: int, group_channels: int, groups: int) -> None:
    if not is_int(groups) or groups < 1:
        raise OpError(f"conv2d: groups must be a positive int, got {groups!r}")
    if filters % groups:
        raise OpError(f"conv2d: the weight's {filters} filters are not divisible by {groups=}")
    if group_channels * groups != channels:
        raise OpError(
            f"conv2d: input has {channels} channels but the weight expects "
            f"{group_channels * groups} ({groups=})"
        )


def depthwise_conv2d_nchw(
    data: Tensor,
    weight: Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """Each input channel c convolved with its m filters weight[c*m : (c+1)*m, 0].

    data [N, C, H, W], weight [C*m, 1, KH, KW] (channel multiplier m) -> [N, C*m, OH, OW].
    Example: `y = depthwise_conv2d_nchw(x, w, stride=1, padding=1)`.
    """
    op = "depthwise_conv2d"
    _check_conv_operands(op, data, weight)
    (batch, channels, _, _), (out_channels, one, kh, kw) = data.shape, weight.shape
    if one != 1 or out_channels % channels:
        raise OpError(
            f"{op}: weight must be [C*m, 1, KH, KW] for an input of {channels} channels, "
            f"got {weight.shape}"
        )
    multiplier = out_channels // channels
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv_geometry(op, data, weight, stride, padding, dilation)
    padded = _pad_spatial(data, pads)
    ry, rx = te.reduce_axis(kh, name="ry"), te.reduce_axis(kw, name="rx")

    def body(n: Expr, c: Expr, y: Expr, x: Expr) -> Expr:
        channel = c if multiplier == 1 else c // multiplier
        read = padded[n, channel, window_index(y, sh, ry.var, dh), window_index(x, sw, rx.var, dw)]
        return te.sum(read * weight[c, 0, ry.var, rx.var], axis=(ry, rx))

    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "multiplier": multiplier}
    shape = (batch, out_channels, oh, ow)
    tag = tags.DEPTHWISE_CONV2D_NCHW
    return te.compute(shape, body, name="depthwise_conv2d", tag=tag, attrs=attrs)
