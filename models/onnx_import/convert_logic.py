"""Converters of comparisons, logic, Where, Cast / CastLike and the gathers on computed
indices (Gather, GatherElements, GatherND): ONNX node -> op-library calls.

Their tensors may be of any supported dtype (context.DATA_DTYPES): comparisons make
bools, Where takes a bool condition, Cast converts between any two.
"""

from __future__ import annotations

from typing import Any

import onnx

from models.onnx_import.context import DATA_DTYPES, SUPPORTED_DTYPES, ImportContext
from models.onnx_import.convert_math import binary, operand
from models.onnx_import.loader import describe_type, tensor_dtype

Attrs = dict[str, Any]  # ONNX attribute values: ints, floats, strings, lists

COMPARE = {"Equal": "equal", "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater"}
COMPARE |= {"GreaterOrEqual": "greater_equal"}
LOGIC = {"And": "logical_and", "Or": "logical_or", "Xor": "logical_xor"}


def convert_compare(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [binary(ctx, COMPARE[node.op_type], node.input[0], node.input[1])]


def convert_logic(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [binary(ctx, LOGIC[node.op_type], node.input[0], node.input[1])]


def convert_not(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    return [ctx.emit("logical_not", [node.input[0]])]


def convert_where(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """Where(cond, x, y); one-element constant branches become scalars of the op."""
    cond, x, y = node.input[0], node.input[1], node.input[2]
    ndim = max(len(ctx.shape(n)) for n in (cond, x, y))
    x_op, y_op = operand(ctx, x, ndim), operand(ctx, y, ndim)
    kw = {"dtype": ctx.dtype(x)} if not isinstance(x_op, str) and not isinstance(y_op, str) else {}
    return [ctx.emit("where", [cond, x_op, y_op], kw, arg_names=("cond", "a", "b"))]


def convert_cast(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    to = int(attrs["to"])  # type: ignore[call-overload]
    target = tensor_dtype(to)
    if target not in DATA_DTYPES:
        kind = describe_type(onnx.helper.make_tensor_type_proto(to, None))
        raise ctx.fail(f"Cast to {kind} is not supported; {SUPPORTED_DTYPES}")
    return [cast(ctx, node.input[0], target)]


def convert_cast_like(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    target = ctx.dtype(node.input[1])
    if target not in DATA_DTYPES:
        raise ctx.fail(f"CastLike to {target} is not supported; {SUPPORTED_DTYPES}")
    return [cast(ctx, node.input[0], target)]


def cast(ctx: ImportContext, x: str, dtype: str) -> str:
    """x as `dtype`: x itself when it already is (no node)."""
    return x if ctx.dtype(x) == dtype else ctx.emit("cast", [x], {"dtype": dtype})


def convert_gather(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    """Gather: a remap of constant indices (take), else a gather of loaded indices."""
    x, indices = node.input[0], node.input[1]
    axis = int(attrs.get("axis", 0)) % len(ctx.shape(x))  # type: ignore[call-overload]
    values = ctx.const(indices)
    if values is None:
        return [ctx.emit("gather", [x, indices], {"axis": axis})]
    shape = ctx.shape(x)
    idx = (values + shape[axis] * (values < 0)).astype("int64")
    kw = {"indices": tuple(int(i) for i in idx.reshape(-1)), "axis": axis}
    taken = ctx.emit("take", [x], kw)
    new_shape = shape[:axis] + tuple(idx.shape) + shape[axis + 1 :]
    return [ctx.emit("reshape", [taken], {"newshape": new_shape})]


def convert_gather_elements(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    axis = int(attrs.get("axis", 0))  # type: ignore[call-overload]
    return [ctx.emit("gather_elements", [node.input[0], node.input[1]], {"axis": axis})]


def convert_gather_nd(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs) -> list[str]:
    batch_dims = int(attrs.get("batch_dims", 0))  # type: ignore[call-overload]
    return [ctx.emit("gather_nd", [node.input[0], node.input[1]], {"batch_dims": batch_dims})]
