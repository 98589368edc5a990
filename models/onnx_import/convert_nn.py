"""Converters of the anchor ops: Conv, Gemm, MatMul, pools, BatchNormalization,
LayerNormalization, Softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import const_input, input_name, int_list
from models.onnx_import.context import ImportContext
from models.onnx_import.convert_math import binary, convert_batch_norm_standalone

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists


def spatial_pads(
    ctx: ImportContext,
    attrs: Attrs,
    in_hw: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
) -> tuple[int, int, int, int]:
    """ONNX pads / auto_pad as (top, left, bottom, right)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out[0][0], out[1][0], out[0][1], out[1][1]
    pads = int_list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4 or min(pads) < 0:
        raise ctx.fail(f"pads {pads} are not 4 non-negative ints (only 2-D windows are supported)")
    return pads[0], pads[1], pads[2], pads[3]


def _window_attrs(ctx: ImportContext, attrs: Attrs, x: str, kernel: list[int]) -> dict:
    if len(ctx.shape(x)) != 4 or len(kernel) != 2:
        raise ctx.fail(f"only 1-D and 2-D (NCW, NCHW) windows are supported, got {ctx.shape(x)}")
    strides = int_list(attrs.get("strides", [1, 1]))
    dilations = int_list(attrs.get("dilations", [1, 1]))
    pads = spatial_pads(ctx, attrs, ctx.shape(x)[2:], kernel, strides, dilations)
    return {"stride": tuple(strides), "padding": pads, "dilation": tuple(dilations)}


def lift_1d(attrs: Attrs) -> Attrs:
    """1-D window attributes as 2-D ones over a height of 1."""
    out = dict(attrs)
    for key in ("kernel_shape", "strides", "dilations"):
        if key in attrs:
            out[key] = [1, *int_list(attrs[key])]
    if "pads" in attrs:
        begin, end = int_list(attrs["pads"])
        out["pads"] = [0, begin, 0, end]
    return out


def _unsqueeze_h(ctx: ImportContext, name: str) -> str:
    """[N, C, L] as [N, C, 1, L] (a constant reshaped, a computed value expanded)."""
    value = ctx.const(name)
    if value is not None:
        return ctx.add_const(value.reshape(*value.shape[:2], 1, *value.shape[2:]), "w1d")
    return ctx.emit("expand_dims", [name], {"axes": 2})


def convert_conv(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x, w = node.input[0], node.input[1]
    if len(ctx.shape(x)) != 3:
        return [_conv(ctx, node, x, w, attrs)]
    out = _conv(ctx, node, _unsqueeze_h(ctx, x), _unsqueeze_h(ctx, w), lift_1d(attrs))
    return [ctx.emit("squeeze", [out], {"axes": (2,)})]


def _conv(ctx: ImportContext, node: onnx.NodeProto, x: str, w: str, attrs: Attrs) -> str:
    w_shape = ctx.shape(w)
    kernel = int_list(attrs.get("kernel_shape", w_shape[2:]))
    kw = _window_attrs(ctx, attrs, x, kernel)
    groups, channels = int(attrs.get("group", 1)), ctx.shape(x)[1]
    if groups > 1 and groups == channels and w_shape[1] == 1:
        out = ctx.emit("depthwise_conv2d_nchw", [x, w], kw)
    else:
        out = ctx.emit("conv2d_nchw", [x, w], kw | {"groups": groups})
    bias = input_name(node, 2)
    return ctx.emit("bias_add", [out, bias], {"axis": 1}) if bias else out


def convert_pool(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    if len([o for o in node.output if o]) > 1:
        raise ctx.fail("MaxPool's Indices output is not supported")
    return [pool(ctx, node.op_type, node.input[0], attrs)]


def pool(ctx: ImportContext, kind: str, x: str, attrs: Attrs) -> str:
    """A MaxPool or AveragePool of NCHW data, or of NCW data as NC1W."""
    if len(ctx.shape(x)) != 3:
        return _pool(ctx, kind, x, attrs)
    out = _pool(ctx, kind, ctx.emit("expand_dims", [x], {"axes": 2}), lift_1d(attrs))
    return ctx.emit("squeeze", [out], {"axes": (2,)})


def _pool(ctx: ImportContext, kind: str, x: str, attrs: Attrs) -> str:
    kernel = int_list(attrs["kernel_shape"])
    kw = _window_attrs(ctx, attrs, x, kernel) | {"kernel": tuple(kernel)}
    kw["ceil_mode"] = bool(attrs.get("ceil_mode", 0))
    if kind == "MaxPool":
        if int(attrs.get("storage_order", 0)):
            raise ctx.fail("MaxPool storage_order=1 is not supported")
        return ctx.emit("max_pool2d", [x], kw)
    kw["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    return ctx.emit("avg_pool2d", [x], kw)


def convert_lp_pool(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """(sum over the window of |x|^p)^(1/p): an average pool of |x|^p (padding counted)
    times the window's size."""
    x, p = node.input[0], float(attrs.get("p", 2))
    if p == 2.0:
        powered = ctx.emit("multiply", [x, x])
    else:
        powered = ctx.emit("power", [ctx.emit("abs", [x]), p], arg_names=("a", "b"))
    mean = pool(ctx, "AveragePool", powered, attrs | {"count_include_pad": 1})
    area = float(np.prod(int_list(attrs["kernel_shape"])))
    total = ctx.emit("multiply", [mean, area], arg_names=("a", "b"))
    if p == 2.0:
        return [ctx.emit("sqrt", [total])]
    return [ctx.emit("power", [total, 1.0 / p], arg_names=("a", "b"))]


def convert_global_pool(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    if node.op_type == "GlobalAveragePool" and len(ctx.shape(x)) == 4:
        return [ctx.emit("global_avg_pool2d", [x])]
    axes = tuple(range(2, len(ctx.shape(x))))
    op = "reduce_mean" if node.op_type == "GlobalAveragePool" else "reduce_max"
    return [ctx.emit(op, [x], {"axes": axes, "keepdims": True})]


def _const_transposed(ctx: ImportContext, name: str) -> str:
    value = ctx.const(name)
    assert value is not None
    return ctx.add_const(np.ascontiguousarray(value.T), "weight_t")


def convert_gemm(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    a, b = node.input[0], node.input[1]
    ta, tb = bool(attrs.get("transA", 0)), bool(attrs.get("transB", 0))
    if ta and ctx.is_const(a):  # weights pre-transposed: the kernel reads rows contiguously
        a, ta = _const_transposed(ctx, a), False
    if tb and ctx.is_const(b):
        b, tb = _const_transposed(ctx, b), False
    out = ctx.emit("matmul", [a, b], {"transpose_a": ta, "transpose_b": tb})
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        out = ctx.emit("multiply", [out, alpha], arg_names=("a", "b"))
    c = input_name(node, 2)
    if c is None or beta == 0.0:
        return [out]
    if beta != 1.0:
        value = ctx.const(c)
        c = (
            ctx.add_const((value * beta).astype(np.float32))
            if value is not None
            else ctx.emit("multiply", [c, beta], arg_names=("a", "b"))
        )
    if ctx.shape(c) == (ctx.shape(out)[1],) or ctx.shape(c) == (1, ctx.shape(out)[1]):
        bias = c if len(ctx.shape(c)) == 1 else ctx.emit("reshape", [c], {"newshape": (-1,)})
        return [ctx.emit("bias_add", [out, bias], {"axis": 1})]
    return [binary(ctx, "add", out, c)]


def convert_matmul(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    a, b = node.input[0], node.input[1]
    a_nd, b_nd = len(ctx.shape(a)), len(ctx.shape(b))
    if a_nd == 1:
        a = ctx.emit("expand_dims", [a], {"axes": 0})
    if b_nd == 1:
        b = ctx.emit("expand_dims", [b], {"axes": 1})
    if len(ctx.shape(a)) == 2 and len(ctx.shape(b)) == 2:
        out = ctx.emit("matmul", [a, b])
    else:
        out = ctx.emit("batch_matmul", [a, b])
    ndim = len(ctx.shape(out))
    drop = ([ndim - 2] if a_nd == 1 else []) + ([ndim - 1] if b_nd == 1 else [])
    return [ctx.emit("squeeze", [out], {"axes": tuple(drop)}) if drop else out]


def convert_batch_norm(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    if len([o for o in node.output if o]) > 1:
        raise ctx.fail("BatchNormalization in training mode (extra outputs) is not supported")
    params = [const_input(ctx, node, k, "BatchNormalization parameters") for k in range(1, 5)]
    eps = float(attrs.get("epsilon", 1e-5))
    arrays = [p for p in params if p is not None]
    folded = fold_into_conv(ctx, node.input[0], arrays, eps)
    if folded is not None:
        return [folded]
    return [convert_batch_norm_standalone(ctx, node.input[0], arrays, eps)]


def fold_into_conv(ctx: ImportContext, x: str, params: list[np.ndarray], eps: float) -> str | None:
    """Scale the weights (and bias) of the conv that produces x; None when there is none."""
    tail = ctx.producer(x)
    conv, bias_node = tail, None
    if tail is not None and tail.op == "bias_add":
        bias_node, conv = tail, ctx.producer(tail.inputs[0])
    convs = ("conv2d_nchw", "depthwise_conv2d_nchw")
    if conv is None or conv.op not in convs or not ctx.is_const(conv.inputs[1]):
        return None
    if ctx.uses.get(x, 0) != 1 or (bias_node and not ctx.is_const(bias_node.inputs[1])):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + eps)
    weight = ctx.const(conv.inputs[1]).astype(np.float64)  # type: ignore[union-attr]
    new_w = ctx.add_const((weight * scale[:, None, None, None]).astype(np.float32), "conv_w")
    old_b = ctx.const(bias_node.inputs[1]) if bias_node else None
    old_b = np.zeros_like(scale) if old_b is None else old_b
    new_b = ctx.add_const(((old_b - mean) * scale + beta).astype(np.float32), "conv_b")
    ctx.replace_input(conv, 1, new_w)
    if bias_node is not None:
        ctx.replace_input(bias_node, 1, new_b)
        return bias_node.output
    return ctx.emit("bias_add", [conv.output, new_b], {"axis": 1})


def convert_layer_norm(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x, scale, bias = node.input[0], node.input[1], input_name(node, 2)
    axis = int(attrs.get("axis", -1)) % len(ctx.shape(x))  # type: ignore[call-overload]
    eps = float(attrs.get("epsilon", 1e-5))  # type: ignore[arg-type]
    inputs = [x, scale] + ([bias] if bias else [])
    names = ("x", "gamma", "beta")[: len(inputs)]
    kw: dict[str, object] = {"axis": axis, "eps": eps} | ({} if bias else {"beta": None})
    out = ctx.emit("layer_norm", inputs, kw, arg_names=names)
    if len([o for o in node.output if o]) == 1:
        return [out]
    return [out, *_norm_statistics(ctx, x, axis, eps)]


def _norm_statistics(ctx: ImportContext, x: str, axis: int, eps: float) -> list[str]:
    """LayerNormalization's optional Mean and InvStdDev outputs (axes kept as 1)."""
    axes = tuple(range(axis, len(ctx.shape(x))))
    mean = ctx.emit("reduce_mean", [x], {"axes": axes, "keepdims": True})
    dev = ctx.emit("subtract", [x, mean])
    var = ctx.emit("reduce_mean", [ctx.emit("multiply", [dev, dev])],
                   {"axes": axes, "keepdims": True})  # fmt: skip
    return [mean, ctx.emit("rsqrt", [ctx.emit("add", [var, eps], arg_names=("a", "b"))])]


def convert_softmax(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x, shape = node.input[0], ctx.shape(node.input[0])
    default_axis = -1 if ctx.opset >= 13 else 1
    axis = int(attrs.get("axis", default_axis)) % len(shape)
    if ctx.opset >= 13 or axis == len(shape) - 1:
        return [ctx.emit("softmax", [x], {"axis": axis})]
    # before opset 13: softmax over the flattened trailing axes
    rows = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    flat = ctx.emit("reshape", [x], {"newshape": rows})
    return [ctx.emit("reshape", [ctx.emit("softmax", [flat], {"axis": 1})], {"newshape": shape})]


def convert_instance_norm(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """(x - mean) / sqrt(var + eps) * scale[c] + bias[c], statistics over each (n, c)."""
    x, scale, bias = node.input[0], node.input[1], node.input[2]
    ndim = len(ctx.shape(x))
    axes = tuple(range(2, ndim))
    eps = float(attrs.get("epsilon", 1e-5))
    mean = ctx.emit("reduce_mean", [x], {"axes": axes, "keepdims": True})
    dev = ctx.emit("subtract", [x, mean])
    var = ctx.emit("reduce_mean", [ctx.emit("multiply", [dev, dev])],
                   {"axes": axes, "keepdims": True})  # fmt: skip
    inv = ctx.emit("rsqrt", [ctx.emit("add", [var, eps], arg_names=("a", "b"))])
    normed = ctx.emit("multiply", [dev, inv])
    per_channel = (-1,) + (1,) * (ndim - 2)
    s, b = (ctx.emit("reshape", [v], {"newshape": per_channel}) for v in (scale, bias))
    return [ctx.emit("add", [ctx.emit("multiply", [normed, s]), b])]


def convert_lp_norm(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """x / ||x||_p along the axis (p 1 or 2), 0 where the norm is 0."""
    x = node.input[0]
    axis = int(attrs.get("axis", -1)) % len(ctx.shape(x))
    p = int(attrs.get("p", 2))
    if p not in (1, 2):
        raise ctx.fail(f"LpNormalization with p={p} is not supported (1 or 2)")
    terms = ctx.emit("abs", [x]) if p == 1 else ctx.emit("multiply", [x, x])
    total = ctx.emit("reduce_sum", [terms], {"axes": (axis,), "keepdims": True})
    norm = total if p == 1 else ctx.emit("sqrt", [total])
    zero = ctx.emit("equal", [norm, 0.0], arg_names=("a", "b"))
    quotient = ctx.emit("divide", [x, norm])
    return [ctx.emit("where", [zero, 0.0, quotient], arg_names=("cond", "a", "b"))]
