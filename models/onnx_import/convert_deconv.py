"""ConvTranspose as a direct conv: the input spread `stride` apart with zeros between and
padded (ops.dilate_pad), convolved with the constant weight flipped and its channel axes
swapped per group. The conv then takes the layouts and schedules of every other conv.

For one spatial axis with kernel K, dilation d, stride s, pads (b, e) and output length
O: out[o] = sum_k u[o + b - k d] w[k], where u holds x[i] at i s; flipping k gives a
direct conv over u shifted right by (K - 1) d - b, of length O + (K - 1) d.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import input_name, int_list
from models.onnx_import.context import ImportContext
from models.onnx_import.convert_nn import lift_1d

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists


def convert_conv_transpose(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x, w, bias = node.input[0], node.input[1], input_name(node, 2)
    weight = ctx.const(w)
    if weight is None:
        raise ctx.fail("ConvTranspose with a computed weight is not supported")
    ndim = len(ctx.shape(x))
    if ndim not in (3, 4):
        raise ctx.fail(f"only 1-D and 2-D ConvTranspose is supported, got input {ctx.shape(x)}")
    if ndim == 3:
        x = ctx.emit("expand_dims", [x], {"axes": 2})
        weight, attrs = weight[:, :, None, :], _lift(attrs)
    out = _conv_transpose(ctx, x, weight, bias, attrs)
    return [ctx.emit("squeeze", [out], {"axes": (2,)}) if ndim == 3 else out]


def _lift(attrs: Attrs) -> Attrs:
    out = lift_1d(attrs)
    for key in ("output_padding", "output_shape"):
        if key in attrs:
            out[key] = [1 if key == "output_shape" else 0, *int_list(attrs[key])]
    return out


def _conv_transpose(
    ctx: ImportContext, x: str, weight: np.ndarray, bias: str | None, attrs: Attrs
) -> str:
    n, c, *size = ctx.shape(x)
    groups = int(attrs.get("group", 1))
    kernel = list(weight.shape[2:])
    strides = int_list(attrs.get("strides", [1, 1]))
    dilations = int_list(attrs.get("dilations", [1, 1]))
    begin, out = _pads(attrs, size, kernel, strides, dilations)
    reach = [(k - 1) * d for k, d in zip(kernel, dilations)]
    spread = (n, c, *(o + r for o, r in zip(out, reach)))
    shift = (0, 0, *(r - b for r, b in zip(reach, begin)))
    kw = {"strides": (1, 1, *strides), "pad_before": shift, "out_shape": spread}
    padded = ctx.emit("dilate_pad", [x], kw)
    filters = ctx.add_const(_direct_weight(weight, groups), "deconv_w")
    conv_kw = {"stride": (1, 1), "padding": 0, "dilation": tuple(dilations), "groups": groups}
    y = ctx.emit("conv2d_nchw", [padded, filters], conv_kw)
    return ctx.emit("bias_add", [y, bias], {"axis": 1}) if bias else y


def _pads(
    attrs: Attrs, size: list[int], kernel: list[int], strides: list[int], dilations: list[int]
) -> tuple[list[int], list[int]]:
    """(pads before, output size) per spatial axis, as onnx's reference computes them."""
    extra = int_list(attrs.get("output_padding", [0] * len(size)))
    full = [
        s * (i - 1) + p + (k - 1) * d + 1
        for i, s, p, k, d in zip(size, strides, extra, kernel, dilations)
    ]
    auto = attrs.get("auto_pad", "NOTSET")
    same = auto in ("SAME_UPPER", "SAME_LOWER")
    if "pads" in attrs or not same and "output_shape" not in attrs:
        pads = int_list(attrs.get("pads", [0] * 2 * len(size)))
        begin, end = pads[: len(size)], pads[len(size) :]
        return begin, [f - b - e for f, b, e in zip(full, begin, end)]
    if "output_shape" in attrs:
        out = int_list(attrs["output_shape"])[-len(size) :]
    else:
        out = [i * s for i, s in zip(size, strides)]
    total = [f - o for f, o in zip(full, out)]
    if auto == "SAME_UPPER":
        return [t // 2 for t in total], out
    return [t - t // 2 for t in total], out


def _direct_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """[C, F/g, kh, kw] -> [F, C/g, kh, kw], flipped in space, per group."""
    c, fg, kh, kw = weight.shape
    per_group = weight.reshape(groups, c // groups, fg, kh, kw).transpose(0, 2, 1, 3, 4)
    direct = per_group.reshape(groups * fg, c // groups, kh, kw)[:, :, ::-1, ::-1]
    return np.ascontiguousarray(direct, dtype=np.float32)
