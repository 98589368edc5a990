"""Converters of the position ops and the rest of the small ones: ArgMax, ArgMin, Hardmax,
CumSum, Trilu, OneHot, EyeLike, IsNaN, IsInf, Einsum, QuantizeLinear, DequantizeLinear."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import const_input
from models.onnx_import.context import ImportContext
from models.onnx_import.loader import tensor_dtype

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists


def convert_arg(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    kw = {
        "axis": int(attrs.get("axis", 0)),
        "keepdims": bool(attrs.get("keepdims", 1)),
        "last": bool(attrs.get("select_last_index", 0)),
    }
    return [ctx.emit(node.op_type.lower(), [node.input[0]], kw)]


def convert_hardmax(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """1 at the first largest entry along the axis, 0 elsewhere (before opset 13: over the
    flattened trailing axes)."""
    x, shape = node.input[0], ctx.shape(node.input[0])
    axis = int(attrs.get("axis", -1 if ctx.opset >= 13 else 1)) % len(shape)
    if ctx.opset < 13 and axis != len(shape) - 1:
        rows = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
        flat = ctx.emit("reshape", [x], {"newshape": rows})
        return [ctx.emit("reshape", [_hardmax(ctx, flat, 1)], {"newshape": shape})]
    return [_hardmax(ctx, x, axis)]


def _hardmax(ctx: ImportContext, x: str, axis: int) -> str:
    best = ctx.emit("argmax", [x], {"axis": axis, "keepdims": False})
    kw = {"depth": ctx.shape(x)[axis], "off": 0.0, "on": 1.0, "axis": axis, "dtype": ctx.dtype(x)}
    return ctx.emit("one_hot", [best], kw)


def convert_cumsum(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    axis = int(np.asarray(const_input(ctx, node, 1, "axis")).reshape(-1)[0])
    kw = {"axis": axis, "exclusive": bool(attrs.get("exclusive", 0))}
    kw["reverse"] = bool(attrs.get("reverse", 0))
    return [ctx.emit("cumsum", [node.input[0]], kw)]


def convert_trilu(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    k = const_input(ctx, node, 1, "k")
    kw = {"k": 0 if k is None else int(k.reshape(-1)[0]), "upper": bool(attrs.get("upper", 1))}
    return [ctx.emit("trilu", [node.input[0]], kw)]


def convert_one_hot(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    depth = int(np.asarray(const_input(ctx, node, 1, "depth")).reshape(-1)[0])
    values = const_input(ctx, node, 2, "values")
    assert values is not None
    off, on = (v.item() for v in values.reshape(-1)[:2])
    kw = {"depth": depth, "off": off, "on": on, "axis": int(attrs.get("axis", -1))}
    return [ctx.emit("one_hot", [node.input[0]], kw | {"dtype": str(values.dtype)})]


def convert_eye_like(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """A constant: it depends only on its input's (static) shape."""
    shape = ctx.shape(node.input[0])
    if len(shape) != 2:
        raise ctx.fail(f"EyeLike needs a 2-D input, got shape {shape}")
    dtype = tensor_dtype(int(attrs["dtype"])) if "dtype" in attrs else ctx.dtype(node.input[0])
    eye = np.eye(*shape, k=int(attrs.get("k", 0)), dtype=dtype)
    return [ctx.add_const(eye, "eye")]


def convert_isnan(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("isnan", [node.input[0]])]


def convert_isinf(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    kw = {"positive": bool(attrs.get("detect_positive", 1))}
    kw["negative"] = bool(attrs.get("detect_negative", 1))
    return [ctx.emit("isinf", [node.input[0]], kw)]


def convert_einsum(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    names = [n for n in node.input if n]
    return [ctx.emit("einsum", names, {"equation": attrs["equation"]})]


def convert_quantize(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    inputs = [n for n in node.input[:3] if n]
    if int(attrs.get("block_size", 0)):
        raise ctx.fail("blocked quantization (block_size) is not supported")
    kw: dict[str, object] = {"axis": int(attrs.get("axis", 1))}
    if node.op_type == "QuantizeLinear":
        to = int(attrs.get("output_dtype", 0))
        kw["dtype"] = tensor_dtype(to) if to else "uint8"
        op = "quantize_linear"
    else:
        op = "dequantize_linear"
    return [ctx.emit(op, inputs, kw, arg_names=("x", "scale", "zero_point")[: len(inputs)])]
