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
