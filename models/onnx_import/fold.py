"""Constant folding: a node whose inputs are all constants is evaluated at import time
(shape arithmetic, weight transposes) by onnx's reference implementation."""

from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from models.onnx_import.context import ImportContext

SHAPE_OPS = {"Shape", "Size"}  # foldable from a runtime value's static shape


def can_fold(ctx: ImportContext, node: onnx.NodeProto) -> bool:
    present = [n for n in node.input if n]
    if node.op_type in SHAPE_OPS:
        return bool(present)
    return bool(present) and all(ctx.is_const(n) for n in present)


def fold(ctx: ImportContext, node: onnx.NodeProto) -> list[np.ndarray]:
    """The node's outputs computed from constant inputs (or from a static shape)."""
    if node.op_type in SHAPE_OPS:
        return [_shape_op(ctx, node)]
    feeds = {n: ctx.const(n) for n in node.input if n}
    try:
        evaluator = ReferenceEvaluator(_single_node_model(node, feeds, ctx.opset))
        results = evaluator.run(None, feeds)
    except Exception as err:  # the reference implementation raises anything
        raise ctx.fail(f"cannot fold constant inputs: {str(err).splitlines()[0]}") from err
    return [np.asarray(r) for r in results]


def _shape_op(ctx: ImportContext, node: onnx.NodeProto) -> np.ndarray:
    shape = ctx.shape(node.input[0])
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    start, end = int(attrs.get("start", 0)), attrs.get("end")
    dims = shape[start:] if end is None else shape[start : int(end)]
    return np.array(dims, dtype=np.int64)


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
