"""Converters of elementwise math and reductions: ONNX node -> op-library calls.

Each converter takes (ctx, node, attrs) and returns the value names of the
node's outputs. Constant operands of size 1 become scalar attrs of the op.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from models.onnx_import.attrs import axes_arg, const_input
from models.onnx_import.context import ImportContext, Operand

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists

BINARY = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide", "Pow": "power"}
BINARY |= {"Max": "maximum", "Min": "minimum", "Sum": "add"}
UNARY = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Erf": "erf",
    "Abs": "abs",
    "Neg": "neg",
    "HardSwish": "hard_swish",
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round_half_even",
    "Sign": "sign",
}


def operand(ctx: ImportContext, name: str, other_ndim: int) -> Operand:
    """A constant of one element that does not widen the result becomes a Python number
    (a float, or an int for integer and bool constants)."""
    value = ctx.const(name)
    if value is not None and value.size == 1 and value.ndim <= other_ndim:
        item = value.reshape(()).item()
        return float(item) if isinstance(item, float) else int(item)
    return name


def binary(ctx: ImportContext, op: str, a: str, b: str) -> str:
    """`op(a, b)` with numpy broadcasting; scalars folded into attrs."""
    a_op = operand(ctx, a, len(ctx.shape(b)))
    b_op = operand(ctx, b, len(ctx.shape(a)))
    if op == "power" and isinstance(b_op, float) and b_op in (1.0, 2.0, 0.5):
        return _power(ctx, a, b_op)
    return ctx.emit(op, [a_op, b_op], arg_names=("a", "b"))


def _power(ctx: ImportContext, x: str, exponent: float) -> str:
    if exponent == 2.0:  # x**2 -> x*x (no pow call)
        return ctx.emit("multiply", [x, x])
    if exponent == 0.5:
        return ctx.emit("sqrt", [x])
    return ctx.emit("multiply", [x, 1.0], arg_names=("a", "b"))


def convert_binary(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    op = BINARY[node.op_type]
    names = [n for n in node.input if n]
    out = names[0]
    for other in names[1:]:  # Max / Min are variadic
        out = binary(ctx, op, out, other)
    if len(names) == 1:
        out = ctx.emit("reshape", [out], {"newshape": ctx.shape(out)})
    return [out]


def convert_unary(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit(UNARY[node.op_type], [node.input[0]])]


TRIG = {op: op.lower() for op in ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
                                  "Asinh", "Acosh", "Atanh")}  # fmt: skip


def convert_trig(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("trig", [node.input[0]], {"func": TRIG[node.op_type]})]


def convert_mod(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    a, b = node.input[0], node.input[1]
    a_op, b_op = operand(ctx, a, len(ctx.shape(b))), operand(ctx, b, len(ctx.shape(a)))
    fmod = {"fmod": bool(attrs.get("fmod", 0))}
    return [ctx.emit("mod", [a_op, b_op], fmod, arg_names=("a", "b"))]


def convert_mean(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    names = [n for n in node.input if n]
    total = names[0]
    for other in names[1:]:
        total = binary(ctx, "add", total, other)
    if len(names) == 1:
        return [ctx.emit("reshape", [total], {"newshape": ctx.shape(total)})]
    return [ctx.emit("multiply", [total, 1.0 / len(names)], arg_names=("a", "b"))]


def convert_reciprocal(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("divide", [1.0, node.input[0]], arg_names=("a", "b"))]


def convert_leaky_relu(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("leaky_relu", [node.input[0]], {"alpha": float(attrs.get("alpha", 0.01))})]


def convert_hard_sigmoid(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [ctx.emit("hard_sigmoid", [node.input[0]], {"alpha": alpha, "beta": beta})]


def convert_clip(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    lo_arr, hi_arr = const_input(ctx, node, 1, "min"), const_input(ctx, node, 2, "max")
    lo = float(lo_arr) if lo_arr is not None else float(attrs.get("min", -math.inf))  # type: ignore[arg-type]
    hi = float(hi_arr) if hi_arr is not None else float(attrs.get("max", math.inf))  # type: ignore[arg-type]
    x = node.input[0]
    if lo > hi:  # ONNX: every element becomes max
        return [
            ctx.emit(
                "minimum",
                [ctx.emit("maximum", [x, hi], arg_names=("a", "b")), hi],
                arg_names=("a", "b"),
            )
        ]
    if math.isinf(lo) and math.isinf(hi):
        return [ctx.emit("reshape", [x], {"newshape": ctx.shape(x)})]
    if math.isinf(hi):
        return [ctx.emit("maximum", [x, lo], arg_names=("a", "b"))]
    if math.isinf(lo):
        return [ctx.emit("minimum", [x, hi], arg_names=("a", "b"))]
    return [ctx.emit("clip", [x], {"lo": lo, "hi": hi})]


def convert_gelu(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    if attrs.get("approximate", "none") != "tanh":
        return [ctx.emit("gelu", [x])]
    # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
    cube = ctx.emit("multiply", [ctx.emit("multiply", [x, x]), x])
    inner = ctx.emit("add", [x, ctx.emit("multiply", [cube, 0.044715], arg_names=("a", "b"))])
    scaled = ctx.emit("multiply", [inner, math.sqrt(2.0 / math.pi)], arg_names=("a", "b"))
    one_plus = ctx.emit("add", [ctx.emit("tanh", [scaled]), 1.0], arg_names=("a", "b"))
    half_x = ctx.emit("multiply", [x, 0.5], arg_names=("a", "b"))
    return [ctx.emit("multiply", [half_x, one_plus])]


REDUCE = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max"}
REDUCE |= {"ReduceMin": "reduce_min", "ReduceProd": "reduce_prod"}


def convert_reduce(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    x = node.input[0]
    axes = axes_arg(ctx, node, attrs, 1)
    keepdims = bool(attrs.get("keepdims", 1))
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return [ctx.emit("reshape", [x], {"newshape": ctx.shape(x)})]
        axes = list(range(len(ctx.shape(x))))
    kw = {"axes": tuple(axes), "keepdims": keepdims}
    if ctx.dtype(x) != "bool":
        return [ctx.emit(REDUCE[node.op_type], [x], kw)]
    as_int = ctx.emit("cast", [x], {"dtype": "int32"})  # max / min of bools: any / all
    return [ctx.emit("cast", [ctx.emit(REDUCE[node.op_type], [as_int], kw)], {"dtype": "bool"})]


def convert_batch_norm_standalone(
    ctx: ImportContext, x: str, params: list[np.ndarray], eps: float
) -> str:
    """BatchNormalization that follows no conv: x * scale[c] + shift[c]."""
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    trailing = (1,) * (len(ctx.shape(x)) - 2)
    s = ctx.add_const(scale.astype(np.float32).reshape((-1, *trailing)), "bn_scale")
    b = ctx.add_const(shift.astype(np.float32).reshape((-1, *trailing)), "bn_shift")
    return ctx.emit("add", [ctx.emit("multiply", [x, s]), b])
