"""Reading and validating an ONNX file: load, checker, static input shapes, shape inference,
and the size guard: no tensor over `settings().max_tensor_bytes` (compiler/settings.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from compiler.errors import UserError
from compiler.settings import check_tensor_size
from models.errors import ModelError
from models.onnx_import.context import DATA_DTYPES, SUPPORTED_DTYPES, describe

# data propagation spends ~140 bytes per element of each rank-1 tensor it meets
DATA_PROP_MAX_VECTOR = 1 << 16


def read_model(path: str | Path) -> onnx.ModelProto:
    """onnx.load with a one-line ModelError for a missing, unreadable or truncated file."""
    try:
        model = onnx.load(str(path))
    except FileNotFoundError as err:
        raise ModelError(f"{path}: no such file") from err
    except Exception as err:  # protobuf decode errors come in several types
        raise ModelError(f"{path}: not a readable ONNX file ({_first_line(err)})") from err
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path}: not a readable ONNX file (empty or truncated: no graph)")
    return model


def check_model(model: onnx.ModelProto, label: str) -> None:
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise ModelError(
            f"{label}: the ONNX checker rejects the model: {_first_line(err)}"
        ) from err


def fix_input_shapes(
    model: onnx.ModelProto, label: str, overrides: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Static shapes of the graph inputs (initializers excluded), set in place: the
    overrides, and every symbolic dimension an override binds (`--input-shape
    input_ids=1,128` makes "batch" 1 and "sequence" 128 in attention_mask too)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    unknown = set(overrides) - {i.name for i in inputs}
    if unknown:
        raise ModelError(f"{label}: --input-shape names no input of the model: {sorted(unknown)}")
    for inp in inputs:
        input_dtype(inp, label)
    bound = _bound_symbols(inputs, overrides, label)
    shapes = {}
    for inp in inputs:
        if inp.name in overrides:
            _override(inp, overrides[inp.name], label)
        else:
            _bind(inp, bound, label)
        shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
        itemsize = np.dtype(input_dtype(inp, label)).itemsize
        check_size(label, f"input {inp.name!r}", shape, itemsize)
        shapes[inp.name] = shape
    return shapes


def _bound_symbols(
    inputs: list[onnx.ValueInfoProto], overrides: dict[str, tuple[int, ...]], label: str
) -> dict[str, int]:
    """Symbolic dimension name -> the size the overrides give it (one size per name)."""
    bound: dict[str, int] = {}
    for inp in inputs:
        shape = overrides.get(inp.name)
        if shape is None:
            continue
        dims = inp.type.tensor_type.shape.dim
        for d, size in zip(dims, shape if len(dims) == len(shape) else ()):
            if d.dim_param and bound.setdefault(d.dim_param, size) != size:
                raise ModelError(
                    f"{label}: --input-shape gives dimension {d.dim_param!r} two sizes, "
                    f"{bound[d.dim_param]} and {size} (input {inp.name!r})"
                )
    return bound


def _bind(inp: onnx.ValueInfoProto, bound: dict[str, int], label: str) -> None:
    """The input's dynamic dims set from `bound`; a ModelError for one left dynamic."""
    tensor = inp.type.tensor_type
    if not tensor.HasField("shape"):
        raise ModelError(
            f"{label}: input {inp.name!r} has an unknown rank; give it a static shape with "
            f"--input-shape {inp.name}=1,3,224,224"
        )
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            continue
        if d.dim_param in bound:
            d.dim_value = bound[d.dim_param]  # clears dim_param (a oneof)
            continue
        raise ModelError(
            f"{label}: input {inp.name!r} has a dynamic dimension {d.dim_param or '?'!r}; give "
            f"it a static shape with --input-shape {inp.name}={_example(tensor.shape)} (several "
            f"inputs: one --input-shape each)"
        )


def _example(shape: onnx.TensorShapeProto) -> str:
    """An --input-shape value of the input's rank: its static dims, 1 for the first
    dynamic one (a batch), 128 for the others (a sequence, an image side)."""
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in shape.dim]  # fmt: skip
    return ",".join(str(d) if d else ("1" if k == 0 else "128") for k, d in enumerate(dims))


def check_size(where: str, what: str, shape: Sequence[int], itemsize: int = 4) -> None:
    """A ModelError (`WHERE: WHAT of shape ... would take ...`) for a tensor over the limit."""
    try:
        check_tensor_size(what, tuple(int(d) for d in shape), itemsize)
    except UserError as err:
        raise ModelError(f"{where}: {err}") from None


def itemsize(elem_type: int) -> int:
    """Bytes per element of an ONNX tensor type (4 where the type says nothing)."""
    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize) or 4
    except (KeyError, TypeError, ValueError):
        return 4


def check_declared_sizes(model: onnx.ModelProto, label: str) -> None:
    """Every initializer and Constant node tensor under the limit (before numpy reads them)."""
    for init in model.graph.initializer:
        check_size(label, f"initializer {init.name!r}", init.dims, itemsize(init.data_type))
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value":
                where = f"{label}: node {describe(node, index)}"
                check_size(where, f"constant {node.output[0]!r}", attr.t.dims,
                           itemsize(attr.t.data_type))  # fmt: skip


def input_dtype(inp: onnx.ValueInfoProto, label: str) -> str:
    """The numpy dtype name of a graph input; a ModelError naming any other type (a
    sequence, optional, map or sparse tensor; a string, float16, float64 ... tensor)."""
    kind = inp.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ModelError(
            f"{label}: input {inp.name!r} is {describe_type(inp.type)}; only tensors are "
            f"supported ({SUPPORTED_DTYPES})"
        )
    dtype = tensor_dtype(inp.type.tensor_type.elem_type)
    if dtype not in DATA_DTYPES:
        raise ModelError(
            f"{label}: input {inp.name!r} is a {describe_type(inp.type)}; {SUPPORTED_DTYPES}"
        )
    return dtype


def tensor_dtype(elem_type: int) -> str:
    """An ONNX element type as a numpy dtype name ("float32", "int64", "bool"), else its
    ONNX name ("FLOAT16", "STRING", "BFLOAT16")."""
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))
    except (KeyError, TypeError, ValueError):
        return _elem_name(elem_type)


def describe_type(tp: onnx.TypeProto) -> str:
    """A type as words: "FLOAT16 tensor", "sequence of FLOAT tensor", "optional of ..."."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return f"{_elem_name(tp.tensor_type.elem_type)} tensor"
    if kind == "sparse_tensor_type":
        return f"{_elem_name(tp.sparse_tensor_type.elem_type)} sparse tensor"
    if kind == "sequence_type":
        return f"sequence of {describe_type(tp.sequence_type.elem_type)}"
    if kind == "optional_type":
        return f"optional of {describe_type(tp.optional_type.elem_type)}"
    if kind == "map_type":
        key = _elem_name(tp.map_type.key_type)
        return f"map from {key} to {describe_type(tp.map_type.value_type)}"
    return "a value of unknown type"


def _elem_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


def _override(inp: onnx.ValueInfoProto, shape: tuple[int, ...], label: str) -> None:
    if min(shape, default=1) <= 0:
        raise ModelError(
            f"{label}: input {inp.name!r} of shape {list(shape)}: zero-size tensors are not "
            f"supported"
        )
    dims = inp.type.tensor_type.shape.dim
    if len(dims) and len(dims) != len(shape):
        raise ModelError(
            f"{label}: --input-shape {inp.name} has {len(shape)} dims, the input has {len(dims)}"
        )
    inp.type.tensor_type.shape.ClearField("dim")
    for d in shape:
        inp.type.tensor_type.shape.dim.add().dim_value = d


def infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """onnx shape inference, refusing every value it finds over the size limit (naming the
    value and the node that makes it) before anything computes it. Data propagation
    (static shapes through shape arithmetic) runs second, and only when no rank-1 tensor
    is longer than DATA_PROP_MAX_VECTOR: onnx builds a shape of each one it propagates,
    ~140 bytes an element (a 1-D tensor of a billion elements would exhaust memory)."""
    plain = _infer(model, label, data_prop=False)
    check_inferred_sizes(plain, label)
    if _longest_vector(plain) > DATA_PROP_MAX_VECTOR:
        return plain
    propagated = _infer(model, label, data_prop=True)
    check_inferred_sizes(propagated, label)
    return propagated


def _infer(model: onnx.ModelProto, label: str, *, data_prop: bool) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=data_prop)
    except MemoryError:
        raise ModelError(f"{label}: shape inference ran out of memory") from None
    except Exception as err:
        raise ModelError(f"{label}: shape inference failed: {_first_line(err)}") from err


def check_inferred_sizes(model: onnx.ModelProto, label: str) -> None:
    """Every value with a static inferred shape under the limit, named with its node."""
    producers = {
        out: (node, index)
        for index, node in enumerate(model.graph.node)
        for out in node.output
        if out
    }
    for name, shape, elem in _static_values(model):
        if name not in producers:
            continue  # a graph input (fix_input_shapes) or an initializer (check_declared_sizes)
        node, index = producers[name]
        where = f"{label}: node {describe(node, index)}"
        check_size(where, f"value {name!r}", shape, itemsize(elem))


def _static_values(model: onnx.ModelProto) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, shape, element type) of the values whose inferred shape is fully static."""
    graph, out = model.graph, []
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if not info.type.HasField("tensor_type"):
            continue
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = tensor.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out.append((info.name, tuple(int(d.dim_value) for d in dims), tensor.elem_type))
    return out


def _longest_vector(model: onnx.ModelProto) -> int:
    lengths = [s[0] for _, s, _ in _static_values(model) if len(s) == 1]
    lengths += [int(t.dims[0]) for t in model.graph.initializer if len(t.dims) == 1]
    return max(lengths, default=0)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
