"""Small ONNX models written in tests (not a test module)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def single_op_model(
    op: str,
    input_shape: list[int | str],
    *,
    elem_type: int = TensorProto.FLOAT,
    inits: dict[str, np.ndarray] | None = None,
    extra_inputs: tuple[str, ...] = (),
    opset: int = 17,
    **attrs: object,
) -> onnx.ModelProto:
    """`y = op(x, *extra_inputs)` with the given initializers."""
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node],
        "single",
        [helper.make_tensor_value_info("x", elem_type, input_shape)],
        [helper.make_tensor_value_info("y", elem_type, None)],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)
