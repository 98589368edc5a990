"""conv2d on NCHW data with the weight pre-packed into output-channel blocks (NCHWc-style).

The weight [F, C, KH, KW] is stored as [F/b, C, KH, KW, b] (b = 16 fills one
AVX-512 register of float32), so a register tile can load b output channels'
weights as one vector and broadcast input pixels: the layout x86 libraries
(oneDNN, TVM's conv2d_NCHWc) use. The reduction stage computes
[N, F/b, OH, OW, b]; an injective stage returns the usual NCHW. For constant
weights the packing runs once at compile time (`pack_conv_weight`).
"""

from __future__ import annotations

import numpy as np

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.nn import _check_groups, _conv_geometry, _pad_spatial
from compiler.ops.shapes import IntOrPair, check_ndim, check_same_dtype, window_index
from compiler.te import Expr, Tensor


def pack_conv_weight(weight: np.ndarray, block: int) -> np.ndarray:
    """[F, C, KH, KW] -> [ceil(F/block), C, KH, KW, block] (what conv2d_nchwc reads);
    filters past F are zeros."""
    f, c, kh, kw = weight.shape
    blocks = -(-f // block)
    padded = np.zeros((blocks * block, c, kh, kw), weight.dtype)
    padded[:f] = weight
    packed = padded.reshape(blocks, block, c, kh, kw).transpose(0, 2, 3, 4, 1)
    return np.ascontiguousarray(packed)


def conv2d_nchwc(
    data: Tensor,
    weight_packed: Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    filters: int | None = None,
) -> Tensor:
    """conv2d_nchw(data, weight) with `weight_packed = pack_conv_weight(weight, b)`.

    `filters` is F when it is not a multiple of b (the last block is zero-padded).
    Example: `y = conv2d_nchwc(x, wp, stride=1, padding=1)` with wp [F/16, C, 3, 3, 16].
    """
    op = "conv2d_nchwc"
    check_ndim(op, "data", data, 4)
    check_ndim(op, "weight_packed", weight_packed, 5)
    check_same_dtype(op, data, weight_packed)
    blocks, channels, kh, kw, block = weight_packed.shape
    _check_groups(data.shape[1], blocks * block, channels, 1)
    filters = blocks * block if filters is None else filters
    if not (blocks - 1) * block < filters <= blocks * block:
        raise OpError(f"{op}: filters={filters} does not fit {blocks} blocks of {block}")
    unpacked = te.placeholder((blocks * block, channels, kh, kw), data.dtype)  # geometry only
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv_geometry(
        op, data, unpacked, stride, padding, dilation
    )
    padded = _pad_spatial(data, pads)
    rc = te.reduce_axis(channels, name="rc")
    ry, rx = te.reduce_axis(kh, name="ry"), te.reduce_axis(kw, name="rx")

    def body(n: Expr, fo: Expr, y: Expr, x: Expr, fi: Expr) -> Expr:
        read = padded[n, rc.var, window_index(y, sh, ry.var, dh), window_index(x, sw, rx.var, dw)]
        return te.sum(read * weight_packed[fo, rc.var, ry.var, rx.var, fi], axis=(rc, ry, rx))

    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "block": block}
    shape = (data.shape[0], blocks, oh, ow, block)
    conv = te.compute(shape, body, name=op, tag=tags.CONV2D_NCHWC, attrs=attrs)
    return te.compute(
        (data.shape[0], filters, oh, ow),
        lambda n, f, y, x: conv[n, f // block, y, x, f % block],
        name="unpack_nchwc",
        tag=tags.INJECTIVE,
    )


# --- The blocked channel layout NCHWc: activations [N, ceil(C/b), H, W, b] -------------
# Carried from conv to conv through element-wise ops and pools (models/layout.py), so a
# conv's register tile stores whole vectors of b channels and reads its input the same
# way, with no NCHW re-indexing between layers. Channels past C are zeros (filters past
# F have zero weights and zero bias).


def pack_conv_weight_blocked(weight: np.ndarray, block: int) -> np.ndarray:
    """[F, C, KH, KW] -> [ceil(F/b), ceil(C/b), KH, KW, b (input), b (output)], the weight
    of a conv reading and writing blocked data (what conv2d_blocked reads); filters and
    channels past F and C are zeros."""
    f, c, kh, kw = weight.shape
    fb, cb = -(-f // block), -(-c // block)
    padded = np.zeros((fb * block, cb * block, kh, kw), weight.dtype)
    padded[:f, :c] = weight
    packed = padded.reshape(fb, block, cb, block, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    return np.ascontiguousarray(packed)


def pack_depthwise_weight(weight: np.ndarray, block: int) -> np.ndarray:
    """[C, 1, KH, KW] -> [ceil(C/b), KH, KW, b] (what depthwise_conv2d_blocked reads)."""
    c, _, kh, kw = weight.shape
    cb = -(-c // block)
    padded = np.zeros((cb * block, kh, kw), weight.dtype)
    padded[:c] = weight[:, 0]
    return np.ascontiguousarray(padded.reshape(cb, block, kh, kw).transpose(0, 2, 3, 1))


def pack_channel_vector(vector: np.ndarray, block: int) -> np.ndarray:
    """A per-channel vector [C] -> [1, ceil(C/b), 1, 1, b] (zeros past C): a bias or a
    scale broadcast over blocked data."""
    c = vector.shape[0]
    padded = np.zeros(-(-c // block) * block, vector.dtype)
    padded[:c] = vector
    return padded.reshape(1, -1, 1, 1, block)


def _window(
    op: str, data: Tensor, kh: int, kw: int, stride: IntOrPair, padding: IntOrPair,
    dilation: IntOrPair,
) -> tuple:  # fmt: skip
    """A conv's window over NCHW or blocked data: (stride, dilation, pads, output H and
    W, the padded data, the ry and rx reduce axes)."""
    geometry = te.placeholder((data.shape[0], 1, *data.shape[2:4]), data.dtype)
    kernel = te.placeholder((1, 1, kh, kw), data.dtype)
    strides, dilations, pads, out = _conv_geometry(op, geometry, kernel, stride, padding, dilation)
    ry, rx = te.reduce_axis(kh, name="ry"), te.reduce_axis(kw, name="rx")
    return strides, dilations, pads, out, _pad_spatial(data, pads), ry, rx


def conv2d_blocked(
    data: Tensor,
    weight: Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """A conv writing blocked data [N, F/b, OH, OW, b].

    Reads NCHW data with `weight = pack_conv_weight(w, b)` [F/b, C, KH, KW, b] (a
    network's first conv), or blocked data [N, C/b, H, W, b] with
    `weight = pack_conv_weight_blocked(w, b)` [F/b, C/b, KH, KW, b, b].
    Example: `y = conv2d_blocked(x, wp, stride=2, padding=1)`.
    """
    op = "conv2d_blocked"
    check_same_dtype(op, data, weight)
    if data.ndim == 4:
        check_ndim(op, "weight", weight, 5)
        blocks, channels, kh, kw, block = weight.shape
        if data.shape[1] != channels:
            raise OpError(f"{op}: data has {data.shape[1]} channels, the weight {channels}")
    else:
        check_ndim(op, "data", data, 5)
        check_ndim(op, "weight", weight, 6)
        blocks, in_blocks, kh, kw, block, out_block = weight.shape
        if block != out_block or data.shape[4] != block or data.shape[1] != in_blocks:
            raise OpError(f"{op}: data {data.shape} does not fit the weight {weight.shape}")
    window = _window(op, data, kh, kw, stride, padding, dilation)
    (sh, sw), (dh, dw), pads, (oh, ow), padded, ry, rx = window

    def tap(y: Expr, x: Expr) -> tuple[Expr, Expr]:
        return window_index(y, sh, ry.var, dh), window_index(x, sw, rx.var, dw)

    if data.ndim == 4:
        rc = te.reduce_axis(data.shape[1], name="rc")

        def body(n: Expr, fo: Expr, y: Expr, x: Expr, fi: Expr) -> Expr:
            read = padded[n, rc.var, *tap(y, x)]
            return te.sum(read * weight[fo, rc.var, ry.var, rx.var, fi], axis=(rc, ry, rx))
    else:
        rco, rci = te.reduce_axis(data.shape[1], name="rco"), te.reduce_axis(block, name="rci")

        def body(n: Expr, fo: Expr, y: Expr, x: Expr, fi: Expr) -> Expr:
            read = padded[n, rco.var, *tap(y, x), rci.var]
            w = weight[fo, rco.var, ry.var, rx.var, rci.var, fi]
            return te.sum(read * w, axis=(rco, ry, rx, rci))

    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "block": block}
    shape = (data.shape[0], blocks, oh, ow, block)
    return te.compute(shape, body, name=op, tag=tags.CONV2D_BLOCKED, attrs=attrs)


def depthwise_conv2d_blocked(
    data: Tensor,
    weight: Tensor,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Tensor:
    """Depthwise conv (multiplier 1) on blocked data [N, C/b, H, W, b] with
    `weight = pack_depthwise_weight(w, b)` [C/b, KH, KW, b]: b channels per vector.
    Example: `y = depthwise_conv2d_blocked(x, wp, stride=2, padding=1)`."""
    op = "depthwise_conv2d_blocked"
    check_ndim(op, "data", data, 5)
    check_ndim(op, "weight", weight, 4)
    check_same_dtype(op, data, weight)
    blocks, kh, kw, block = weight.shape
    if data.shape[1] != blocks or data.shape[4] != block:
        raise OpError(f"{op}: data {data.shape} does not fit the weight {weight.shape}")
    window = _window(op, data, kh, kw, stride, padding, dilation)
    (sh, sw), (dh, dw), pads, (oh, ow), padded, ry, rx = window

    def body(n: Expr, c: Expr, y: Expr, x: Expr, i: Expr) -> Expr:
        read = padded[n, c, window_index(y, sh, ry.var, dh), window_index(x, sw, rx.var, dw), i]
        return te.sum(read * weight[c, ry.var, rx.var, i], axis=(ry, rx))

    attrs = {"stride": (sh, sw), "padding": pads, "dilation": (dh, dw), "block": block}
    shape = (data.shape[0], blocks, oh, ow, block)
    return te.compute(shape, body, name=op, tag=tags.DEPTHWISE_CONV2D_BLOCKED, attrs=attrs)


def unblock_channels(data: Tensor, channels: int) -> Tensor:
    """Blocked data [N, C/b, H, W, b] back to NCHW [N, channels, H, W] (the padding
    channels dropped). Example: `y = unblock_channels(x, 24)` for x [1, 2, 56, 56, 16]."""
    op = "unblock_channels"
    check_ndim(op, "data", data, 5)
    n, blocks, h, w, block = data.shape
    if not (blocks - 1) * block < channels <= blocks * block:
        raise OpError(f"{op}: {channels} channels do not fit {blocks} blocks of {block}")
    return te.compute(
        (n, channels, h, w),
        lambda a, c, y, x: data[a, c // block, y, x, c % block],
        name=op,
        tag=tags.INJECTIVE,
    )
