"""ONNX function ops expanded into their definitions before conversion.

An op the converter table does not know, whose ONNX schema defines it as a function
of other ops (Softplus, Mish, Celu, Selu, Shrink, ReduceL2, ReduceLogSumExp,
LogSoftmax, GroupNormalization, DepthToSpace, ...), is replaced by that function's
body at the model's opset: the body's ops are then converted like any others, and
its element-wise chains fuse into one task as the ops of the model would. Bodies
that depend on the node (context-dependent functions) get the node's input types
from shape inference. onnx's inliner does the renaming; expansion repeats while a
body holds function ops of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
import onnx.inliner
from onnx import defs, helper

EXPAND_DOMAIN = "sketchtune.expand"
MAX_ROUNDS = 8  # function bodies nest a few levels at most (Mish -> Softplus)


def expand_functions(model: onnx.ModelProto, known: Callable[[str], bool]) -> onnx.ModelProto:
    """`model` with every node of an unknown op that has a function body inlined."""
    for _ in range(MAX_ROUNDS):
        bodies = _replace_nodes(model, known)
        if not bodies:
            break
        model.functions.extend(bodies)
        model.opset_import.append(helper.make_opsetid(EXPAND_DOMAIN, 1))
        model = onnx.inliner.inline_local_functions(model)
        _drop_domain(model)
    return model


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return onnx.defs.onnx_opset_version()


def _replace_nodes(model: onnx.ModelProto, known: Callable[[str], bool]) -> list:
    """Point each expandable node at a function of its own (returned) in EXPAND_DOMAIN."""
    opset, types = _opset(model), None
    bodies = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or known(node.op_type):
            continue
        schema = _schema(node.op_type, opset)
        if schema is None or not (schema.has_function or schema.has_context_dependent_function):
            continue
        _add_default_attributes(node, schema)
        if not schema.has_function:
            types = _value_types(model) if types is None else types
        body = _function_of(node, schema, opset, types or {})
        if body is None:
            continue
        body.name, body.domain = f"{node.op_type}_{len(bodies)}", EXPAND_DOMAIN
        _set_opset(body, opset)
        node.op_type, node.domain = body.name, EXPAND_DOMAIN
        bodies.append(body)
    return bodies


def _function_of(
    node: onnx.NodeProto, schema: defs.OpSchema, opset: int, types: dict[str, onnx.TypeProto]
) -> onnx.FunctionProto | None:
    """The node's function body at `opset`: the schema's, or the one built for this node
    from its attributes and input types (None without one, or without those types)."""
    if schema.has_function:
        return _body(schema.function_opset_versions, opset, schema.get_function_with_opset_version)
    if not schema.has_context_dependent_function or any(i and i not in types for i in node.input):
        return None
    empty = onnx.TypeProto()  # an omitted optional input
    arg = (node.SerializeToString(), [types.get(i, empty).SerializeToString() for i in node.input])

    def get(version: int) -> bytes:
        return schema.get_context_dependent_function_with_opset_version(version, *arg)

    return _body(schema.context_dependent_function_opset_versions, opset, get)


def _schema(op_type: str, opset: int) -> defs.OpSchema | None:
    try:
        return defs.get_schema(op_type, opset, "")
    except defs.SchemaError:
        return None


def _body(
    versions: list[int], opset: int, get: Callable[[int], bytes]
) -> onnx.FunctionProto | None:
    """The function body written for the newest version <= opset, else the oldest one
    (an op older than its first function body means the same; None without a body)."""
    usable = [v for v in versions if v <= opset]
    if not versions:
        return None
    raw = get(max(usable) if usable else min(versions))
    if not raw:
        return None
    body = onnx.FunctionProto()
    body.ParseFromString(raw)
    return body if body.node else None


def _set_opset(body: onnx.FunctionProto, opset: int) -> None:
    """The body read at the model's opset (onnx's inliner keeps a body written for another
    opset as a call): its ops mean the same there, and the converters take both forms of
    the inputs that moved to attributes or back (axes, splits)."""
    keep = [o for o in body.opset_import if o.domain not in ("", "ai.onnx")]
    del body.opset_import[:]
    body.opset_import.extend([*keep, helper.make_opsetid("", opset)])


def _add_default_attributes(node: onnx.NodeProto, schema: defs.OpSchema) -> None:
    """The schema's default values of attributes the node leaves out (bodies refer to them)."""
    present = {a.name for a in node.attribute}
    for name, attr in schema.attributes.items():
        if name not in present and attr.default_value and attr.default_value.name:
            node.attribute.append(attr.default_value)


def _value_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Every value's type as shape inference sees it (inputs, initializers, intermediates)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, ValueError, TypeError):
        # the loader reports what is wrong with the model
        inferred = model
    graph = inferred.graph
    types = {v.name: v.type for v in [*graph.input, *graph.value_info, *graph.output]}
    for init in graph.initializer:
        types[init.name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
    return types


def _drop_domain(model: onnx.ModelProto) -> None:
    keep = [o for o in model.opset_import if o.domain != EXPAND_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    keep_fns = [f for f in model.functions if f.domain != EXPAND_DOMAIN]
    del model.functions[:]
    model.functions.extend(keep_fns)
