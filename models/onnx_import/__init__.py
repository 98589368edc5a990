"""ONNX model -> `models.graph.Graph`: one op-library call per node, static shapes,
constants folded, BatchNorm folded into the conv before it.

    >>> graph = import_model("resnet18.onnx", input_shapes={"input": (1, 3, 224, 224)})

Every problem with the model raises `ModelError` with one line naming the file
and, where there is one, the node (name, op type, index). So does a tensor over
`settings().max_tensor_bytes` (compiler/settings.py): a graph input, initializer or
constant, a value shape inference finds, a folded constant, an emitted value, each
refused before numpy allocates it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from models.errors import ModelError
from models.graph import Graph, Node, Value
from models.onnx_import.attrs import node_attrs
from models.onnx_import.context import ImportContext, describe
from models.onnx_import.fold import can_fold, fold
from models.onnx_import.functions import expand_functions
from models.onnx_import.loader import (
    check_declared_sizes,
    check_model,
    fix_input_shapes,
    infer_shapes,
    input_dtype,
    read_model,
)
from models.onnx_import.table import CONVERTERS, FOLD_ONLY
from models.onnx_import.unflatten import unflatten_linear_layers

__all__ = ["ModelError", "import_model", "known_op"]


def import_model(
    model: str | Path | onnx.ModelProto,
    *,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    label: str | None = None,
) -> Graph:
    """The network of an ONNX file (or ModelProto) as a Graph of op-library calls."""
    if isinstance(model, onnx.ModelProto):
        proto, label = onnx.ModelProto(), label or model.graph.name or "<model>"
        proto.CopyFrom(model)
    else:
        proto, label = read_model(model), label or str(model)
    check_model(proto, label)
    proto = expand_functions(proto, known_op)  # function ops as their bodies
    _check_supported(proto, label)  # every unsupported op type, before any dtype or shape
    shapes = fix_input_shapes(proto, label, dict(input_shapes or {}))  # refuses a huge input
    check_declared_sizes(proto, label)  # initializers and Constant nodes
    proto = infer_shapes(proto, label)  # refuses every value it finds too big
    dtypes = {i.name: input_dtype(i, label) for i in proto.graph.input if i.name in shapes}
    ctx = ImportContext(label, _opset(proto), shapes=dict(shapes), dtypes=dtypes)
    ctx.uses = Counter(n for node in proto.graph.node for n in node.input if n)
    ctx.uses.update(o.name for o in proto.graph.output)
    for init in proto.graph.initializer:
        ctx.constants[init.name] = numpy_helper.to_array(init)
    for index, node in enumerate(proto.graph.node):
        _convert_node(ctx, node, index)
    return unflatten_linear_layers(_finish(ctx, proto, shapes))


def _opset(proto: onnx.ModelProto) -> int:
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return onnx.defs.onnx_opset_version()


def known_op(op_type: str) -> bool:
    """Whether the importer converts (or folds) this ONNX op type itself."""
    return op_type in CONVERTERS or op_type in FOLD_ONLY or op_type == "Constant"


def _check_supported(proto: onnx.ModelProto, label: str) -> None:
    """One message naming every unsupported op type (and its first node)."""
    missing: dict[str, str] = {}
    for index, node in enumerate(proto.graph.node):
        if node.domain not in ("", "ai.onnx") or not known_op(node.op_type):
            missing.setdefault(node.op_type, describe(node, index))
    if missing:
        listed = ", ".join(f"{op} (first at {where})" for op, where in missing.items())
        raise ModelError(f"{label}: unsupported op types: {listed}")


def _convert_node(ctx: ImportContext, node: onnx.NodeProto, index: int) -> None:
    ctx.source = describe(node, index)
    ctx.hint = next((o for o in node.output if o), node.op_type)
    if node.op_type == "Constant":
        ctx.constants[node.output[0]] = _constant_value(ctx, node)
        return
    if can_fold(ctx, node):
        for name, value in zip(node.output, fold(ctx, node)):
            ctx.constants[name] = value
        return
    if node.op_type not in CONVERTERS:
        raise ctx.fail("its inputs must be constants (it is supported only for shape arithmetic)")
    for name in node.input:
        if name and ctx.resolve(name) not in ctx.shapes and not ctx.is_const(name):
            raise ctx.fail(f"input {name!r} is not computed before it")
    outputs = CONVERTERS[node.op_type](ctx, node, node_attrs(node))
    for name, result in zip(node.output, outputs):
        if name and name != result:
            ctx.alias(name, result)


def _constant_value(ctx: ImportContext, node: onnx.NodeProto) -> np.ndarray:
    attr = node.attribute[0]
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    if attr.name in ("value_float", "value_int"):
        dtype = np.float32 if attr.name == "value_float" else np.int64
        return np.array(onnx.helper.get_attribute_value(attr), dtype=dtype)
    if attr.name in ("value_floats", "value_ints"):
        dtype = np.float32 if attr.name == "value_floats" else np.int64
        return np.array(onnx.helper.get_attribute_value(attr), dtype=dtype)
    raise ctx.fail(f"Constant with {attr.name!r} is not supported")


def _finish(ctx: ImportContext, proto: onnx.ModelProto, shapes: dict) -> Graph:
    """The Graph: outputs under their ONNX names, only the constants the nodes read."""
    taken: set[str] = set()
    for out in proto.graph.output:
        target = ctx.resolve(out.name)
        if target == out.name and target in ctx.constants:  # folded: its copy is the output
            target = _rename_constant(ctx, target, f"{target}__value")
        producer = ctx.producer(target)
        if target == out.name:
            taken.add(target)
        elif producer is not None and target not in taken and target not in shapes:
            _rename(ctx, target, out.name)
            taken.add(out.name)
        else:  # a graph input, a constant (shape arithmetic) or another output: a copy
            ctx.aliases.pop(out.name, None)
            ctx.emit("reshape", [target], {"newshape": ctx.shape(target)}, output=out.name)
            taken.add(out.name)
    used = {i for n in ctx.nodes for i in n.inputs}
    constants = {k: v for k, v in ctx.constants.items() if k in used}
    values = ctx.values()
    inputs = [Value(n, s, ctx.dtypes[n]) for n, s in shapes.items()]
    outputs = [values[o.name] for o in proto.graph.output]
    return Graph(proto.graph.name or "model", inputs, outputs, list(ctx.nodes), constants, values)


def _rename_constant(ctx: ImportContext, old: str, new: str) -> str:
    ctx.constants[new] = ctx.constants.pop(old)
    ctx.nodes = [
        replace(n, inputs=tuple(new if i == old else i for i in n.inputs)) for n in ctx.nodes
    ]
    for k, v in list(ctx.aliases.items()):
        if v == old:
            ctx.aliases[k] = new
    return new


def _rename(ctx: ImportContext, old: str, new: str) -> None:
    def fix(n: Node) -> Node:
        inputs = tuple(new if i == old else i for i in n.inputs)
        output = new if n.output == old else n.output
        return replace(n, inputs=inputs, output=output, name=output)

    ctx.nodes = [fix(n) for n in ctx.nodes]
    ctx.shapes[new] = ctx.shapes.pop(old)
    ctx.dtypes[new] = ctx.dtypes.pop(old)
    for k, v in list(ctx.aliases.items()):
        if v == old:
            ctx.aliases[k] = new
    ctx.aliases.pop(new, None)
