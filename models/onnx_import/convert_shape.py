"""Converters of layout ops: Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze,
Unsqueeze, Pad, Expand, and the pass-throughs (Identity, Dropout)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import axes_arg, const_input, input_name, int_list
from models.onnx_import.context import ImportContext

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists


def convert_passthrough(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """Identity and Dropout (inference): no node at all."""
    mask = node.output[1] if node.op_type == "Dropout" and len(node.output) > 1 else ""
    if mask and ctx.uses.get(mask, 0):
        raise ctx.fail("Dropout's mask output is not supported")
    training = const_input(ctx, node, 2, "training_mode") if node.op_type == "Dropout" else None
    if training is not None and bool(training.reshape(-1)[0]):
        raise ctx.fail("Dropout in training mode is not supported (inference only)")
    return [node.input[0]]


def convert_reshape(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    if "shape" in attrs:
        target = int_list(attrs["shape"])
    else:
        target = int_list(const_input(ctx, node, 1, "shape"))
    old = ctx.shape(x)
    if not int(attrs.get("allowzero", 0)):
        target = [old[k] if d == 0 else d for k, d in enumerate(target)]
    elif 0 in target:
        raise ctx.fail("Reshape with allowzero=1 to a zero-size dimension is not supported")
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        target[target.index(-1)] = math.prod(old) // max(known, 1)
    return [ctx.emit("reshape", [x], {"newshape": tuple(target)})]


def convert_flatten(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("flatten", [node.input[0]], {"axis": int(attrs.get("axis", 1))})]


def convert_transpose(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    perm = tuple(int_list(attrs["perm"])) if "perm" in attrs else None
    return [ctx.emit("transpose", [node.input[0]], {"perm": perm})]


def convert_concat(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    names = [n for n in node.input if n and math.prod(ctx.shape(n)) > 0]
    return [ctx.emit("concat", names, {"axis": int(attrs["axis"])})]  # type: ignore[call-overload]


def convert_split(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    shape = ctx.shape(x)
    axis = int(attrs.get("axis", 0)) % len(shape)  # type: ignore[call-overload]
    outputs = len(node.output)
    if "split" in attrs:
        sizes = int_list(attrs["split"])
    elif input_name(node, 1):
        sizes = int_list(const_input(ctx, node, 1, "split"))
    else:
        chunk = -(-shape[axis] // outputs)
        sizes = [min(chunk, shape[axis] - k * chunk) for k in range(outputs)]
    starts = np.cumsum([0] + sizes[:-1])
    return [
        ctx.emit("slice", [x], {"starts": (int(s),), "ends": (int(s) + n,), "axes": (axis,)})
        if n
        else _empty(ctx, shape[:axis] + (0,) + shape[axis + 1 :], ctx.dtype(x))
        for s, n in zip(starts, sizes)
    ]


def _empty(ctx: ImportContext, shape: tuple[int, ...], dtype: str) -> str:
    """A zero-size piece as an empty constant: Concat drops it, any other reader fails
    naming it (sketchtune has no zero-size tensors)."""
    return ctx.add_const(np.zeros(shape, dtype), "empty")


def convert_slice(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    if "starts" in attrs:  # opset < 10
        starts, ends = int_list(attrs["starts"]), int_list(attrs["ends"])
        axes = int_list(attrs["axes"]) if "axes" in attrs else None
        steps = None
    else:
        starts = int_list(const_input(ctx, node, 1, "starts"))
        ends = int_list(const_input(ctx, node, 2, "ends"))
        axes_arr, steps_arr = const_input(ctx, node, 3, "axes"), const_input(ctx, node, 4, "steps")
        axes = None if axes_arr is None else int_list(axes_arr)
        steps = None if steps_arr is None else int_list(steps_arr)
    big = 2**31 - 1
    ends = [max(min(e, big), -big) for e in ends]
    starts = [max(min(s, big), -big) for s in starts]
    kw: dict[str, object] = {"starts": tuple(starts), "ends": tuple(ends)}
    kw["axes"] = axes and tuple(axes)
    return [ctx.emit("slice", [x], kw | {"steps": steps and tuple(steps)})]


def convert_squeeze(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    axes = axes_arg(ctx, node, attrs, 1)
    return [ctx.emit("squeeze", [node.input[0]], {"axes": axes and tuple(axes)})]


def convert_unsqueeze(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    axes = axes_arg(ctx, node, attrs, 1) or []
    return [ctx.emit("expand_dims", [node.input[0]], {"axes": tuple(axes)})]


def convert_pad(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    ndim = len(ctx.shape(x))
    mode = attrs.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise ctx.fail(f"Pad mode {mode!r} is not supported")
    pads = (
        int_list(attrs["pads"]) if "pads" in attrs else int_list(const_input(ctx, node, 1, "pads"))
    )
    value_arr = const_input(ctx, node, 2, "constant_value")
    value = float(value_arr.reshape(())) if value_arr is not None and value_arr.size else 0.0
    value = float(attrs.get("value", value))  # type: ignore[arg-type]
    axes_arr = const_input(ctx, node, 3, "axes")
    axes = list(range(ndim)) if axes_arr is None else [a % ndim for a in int_list(axes_arr)]
    before, after = [0] * ndim, [0] * ndim
    for q, a in enumerate(axes):
        before[a], after[a] = pads[q], pads[q + len(axes)]
    if min(before + after) < 0:
        raise ctx.fail(f"negative pads {pads} are not supported")
    kw = {"pad_before": tuple(before), "pad_after": tuple(after)}
    if mode != "constant":
        return [ctx.emit("edge_pad", [x], kw | {"mode": mode})]
    return [ctx.emit("pad", [x], kw | {"value": value})]


def convert_tile(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    repeats = int_list(const_input(ctx, node, 1, "repeats"))
    return [ctx.emit("tile", [node.input[0]], {"repeats": tuple(repeats)})]


def convert_expand(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """Expand of computed data: numpy broadcasting to the target shape (a remap)."""
    x = node.input[0]
    target = tuple(int_list(const_input(ctx, node, 1, "shape")))
    ndim = max(len(target), len(ctx.shape(x)))
    padded_x = (1,) * (ndim - len(ctx.shape(x))) + ctx.shape(x)
    padded_t = (1,) * (ndim - len(target)) + target
    out = tuple(max(a, b) for a, b in zip(padded_x, padded_t))
    if out == ctx.shape(x):
        return [x]
    return [ctx.emit("broadcast_to", [x], {"shape": out})]
