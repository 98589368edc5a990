"""Constant folding: a node whose inputs are all constants is evaluated at import time
(shape arithmetic, weight transposes) by onnx's reference implementation.

No folded value is over the size limit (compiler/settings.py): one whose static shape
onnx shape inference knows was refused before import began (loader.infer_shapes); the
others are sized from the node's constant arguments where they tell (ConstantOfShape,
Expand, Tile, Range, broadcasting ops) before evaluating, and every result is checked
after. A MemoryError while evaluating is one line too.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from models.onnx_import.context import ImportContext

SHAPE_OPS = {"Shape", "Size"}  # foldable from a runtime value's static shape
# ops whose output has the numpy broadcast shape of their inputs
BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where",
             "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor",
             "BitShift"}  # fmt: skip
BOOLEAN = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"}


def can_fold(ctx: ImportContext, node: onnx.NodeProto) -> bool:
    present = [n for n in node.input if n]
    if node.op_type in SHAPE_OPS:
        return bool(present)
    return bool(present) and all(ctx.is_const(n) for n in present)


def fold(ctx: ImportContext, node: onnx.NodeProto) -> list[np.ndarray]:
    """The node's outputs computed from constant inputs (or from a static shape)."""
    if node.op_type in SHAPE_OPS:
        return [_shape_op(ctx, node)]
    if node.op_type == "GatherElements":
        return [_gather_elements(ctx, node)]
    feeds = {n: ctx.const(n) for n in node.input if n}
    predicted = _predicted_output(node, [ctx.const(n) if n else None for n in node.input])
    if predicted is not None and node.output and node.output[0]:
        ctx.check_size(node.output[0], *predicted)
    try:
        evaluator = ReferenceEvaluator(_single_node_model(node, feeds, ctx.opset))
        results = evaluator.run(None, feeds)
    except MemoryError as err:
        raise ctx.fail(f"folding constant inputs ran out of memory: {_first_line(err)}") from None
    except Exception as err:  # the reference implementation raises anything
        raise ctx.fail(f"cannot fold constant inputs: {_first_line(err)}") from err
    arrays = [np.asarray(r) for r in results]
    for name, array in zip(node.output, arrays):
        ctx.check_size(name, array.shape, array.itemsize)
    return arrays


def _predicted_output(
    node: onnx.NodeProto, args: list[np.ndarray | None]
) -> tuple[tuple[int, ...], int] | None:
    """The first output's (shape, itemsize) from the constant arguments, where the op
    tells it without evaluating; None otherwise (or for arguments the evaluator refuses)."""
    try:
        return _output_of(node, args)
    except (ValueError, TypeError, IndexError, OverflowError, ZeroDivisionError, AttributeError):
        return None  # malformed arguments: the evaluator says what is wrong with them


def _output_of(
    node: onnx.NodeProto, args: list[np.ndarray | None]
) -> tuple[tuple[int, ...], int] | None:
    op = node.op_type
    first = np.asarray(args[0]) if args and args[0] is not None else None
    if op == "ConstantOfShape":
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        elem = onnx.TensorProto.FLOAT if value is None else value.data_type
        return _ints(first), np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).itemsize
    if first is None:
        return None
    if op == "Expand":
        return np.broadcast_shapes(first.shape, _ints(args[1])), first.itemsize
    if op == "Tile":
        repeats = _ints(args[1])
        return tuple(d * r for d, r in zip(first.shape, repeats, strict=True)), first.itemsize
    if op == "Range":
        start, limit, delta = (float(np.asarray(a).reshape(())) for a in args[:3])
        return (max(math.ceil((limit - start) / delta), 0),), first.itemsize
    if op in BROADCAST:
        present = [np.asarray(a) for a in args if a is not None]
        shape = np.broadcast_shapes(*(a.shape for a in present))
        if op in BOOLEAN:
            return shape, 1
        values = present[1:] if op == "Where" else present
        return shape, max(a.itemsize for a in values)
    return None


def _ints(value: object) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(value).reshape(-1))


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _shape_op(ctx: ImportContext, node: onnx.NodeProto) -> np.ndarray:
    shape = ctx.shape(node.input[0])
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    start, end = int(attrs.get("start", 0)), attrs.get("end")
    dims = shape[start:] if end is None else shape[start : int(end)]
    return np.array(dims, dtype=np.int64)


def _gather_elements(ctx: ImportContext, node: onnx.NodeProto) -> np.ndarray:
    """onnx's reference GatherElements fails past 32 entries along the axis (np.choose):
    BERT's buffered token type ids (512 of them) gathered by positions."""
    data, indices = (np.asarray(ctx.const(n)) for n in node.input[:2])
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0) % max(data.ndim, 1)
    others = [k for k in range(data.ndim) if k != axis]
    if indices.ndim != data.ndim or any(indices.shape[k] > data.shape[k] for k in others):
        raise ctx.fail(f"GatherElements indices of shape {list(indices.shape)} do not fit "
                       f"data of shape {list(data.shape)}")  # fmt: skip
    if np.any((indices < -data.shape[axis]) | (indices >= data.shape[axis])):
        raise ctx.fail("GatherElements indices out of range")
    ctx.check_size(node.output[0], indices.shape, data.itemsize)
    window = tuple(slice(None) if k == axis else slice(0, n) for k, n in enumerate(indices.shape))
    positive = np.where(indices < 0, indices + data.shape[axis], indices)
    return np.take_along_axis(data[window], positive, axis=axis)


def _single_node_model(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray | None], opset: int
) -> onnx.ModelProto:
    inputs = [
        onnx.helper.make_tensor_value_info(
            n, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.asarray(v).shape
        )
        for n, v in feeds.items()
    ]
    outputs = [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n]
    graph = onnx.helper.make_graph([node], "fold", inputs, outputs)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
