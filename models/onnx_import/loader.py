"""Reading and validating an ONNX file: load, checker, static input shapes, shape inference."""

from __future__ import annotations

from pathlib import Path

import onnx

from models.errors import ModelError


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
    """Static shapes of the graph inputs (initializers excluded), overrides applied in place."""
    initializers = {t.name for t in model.graph.initializer}
    unknown = set(overrides) - {i.name for i in model.graph.input}
    if unknown:
        raise ModelError(f"{label}: --input-shape names no input of the model: {sorted(unknown)}")
    shapes = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        _check_float32(inp, label)
        dims = inp.type.tensor_type.shape.dim
        if inp.name in overrides:
            _override(inp, overrides[inp.name], label)
        elif any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            dyn = [d.dim_param or "?" for d in dims if not d.HasField("dim_value")]
            raise ModelError(
                f"{label}: input {inp.name!r} has a dynamic dimension {dyn[0]!r}; give it a "
                f"static shape with --input-shape {inp.name}=1,3,224,224"
            )
        shapes[inp.name] = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
    return shapes


def _check_float32(inp: onnx.ValueInfoProto, label: str) -> None:
    elem = inp.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        name = onnx.TensorProto.DataType.Name(elem)
        raise ModelError(f"{label}: input {inp.name!r} is {name}; only float32 is supported")


def _override(inp: onnx.ValueInfoProto, shape: tuple[int, ...], label: str) -> None:
    dims = inp.type.tensor_type.shape.dim
    if len(dims) and len(dims) != len(shape):
        raise ModelError(
            f"{label}: --input-shape {inp.name} has {len(shape)} dims, the input has {len(dims)}"
        )
    inp.type.tensor_type.shape.ClearField("dim")
    for d in shape:
        inp.type.tensor_type.shape.dim.add().dim_value = d


def infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as err:
        raise ModelError(f"{label}: shape inference failed: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
