"""1x1 convs left on NCHW data (models/pointwise.py): computed on flat planes as matrix
products, against onnxruntime, and where the flat form does not apply."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.network import compile_network
from models.onnx_import import import_model
from models.partition import partition

RNG = np.random.default_rng(0)


def _const(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32) * 0.3, name)


def _model(side: int, extra: list[onnx.NodeProto] | None = None, inits=()) -> onnx.ModelProto:
    """A ResNeXt-like block: a 1x1 conv (24 -> 40 channels) feeding a grouped 3x3 conv, so
    layout propagation leaves both NCHW; a 1x1 conv back to 24 with the block's input
    added (a residual read in the conv's epilogue); `extra` nodes read "y0"."""
    inits = [
        _const("wa", 40, 24, 1, 1), _const("ba", 40),
        _const("wg", 40, 8, 3, 3),
        _const("wc", 24, 40, 1, 1), _const("bc", 24),
        *inits,
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Conv", ["ra", "wg"], ["g"], group=5, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["g"], ["rg"]),
        helper.make_node("Conv", ["rg", "wc", "bc"], ["c"]),
        helper.make_node("Add", ["c", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y0"]),
        *(extra or [helper.make_node("Identity", ["y0"], ["y"])]),
    ]
    shape = [1, 24, side, side]
    graph = helper.make_graph(
        nodes,
        "pointwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _against_onnxruntime(model: onnx.ModelProto) -> None:
    graph = import_model(model)
    x = RNG.standard_normal(graph.inputs[0].shape).astype(np.float32)
    ours = compile_network(graph).run({"x": x})["y"]
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = ref.run(None, {"x": x})[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def _pointwise_tasks(model: onnx.ModelProto):
    part = partition(import_model(model))
    flat = [t for t in part.tasks if t.ops[0] == "conv2d_nchw" and t.shapes[-1][2] == 1]
    return [t for t in flat if t.shapes[1][2:] == [1, 1]]


def test_pointwise_convs_on_nchw_data_run_on_flat_planes():
    model = _model(side=8)  # 64 pixels: four vectors
    tasks = _pointwise_tasks(model)
    assert len(tasks) == 2
    # the data, the plain weight, the bias (and the residual) then the output, flat
    assert tasks[0].shapes == [[1, 24, 1, 64], [40, 24, 1, 1], [40], [1, 40, 1, 64]]
    assert tasks[1].shapes[0] == [1, 40, 1, 64] and tasks[1].shapes[-1] == [1, 24, 1, 64]
    assert [1, 24, 1, 64] in tasks[1].shapes[1:-1]  # the residual, read flat in the epilogue
    _against_onnxruntime(model)


def test_a_plane_of_no_whole_vectors_keeps_the_blocked_tile():
    model = _model(side=7)  # 49 pixels
    assert _pointwise_tasks(model) == []
    ops = {op for t in partition(import_model(model)).tasks for op in t.ops}
    assert "conv2d_nchwc" in ops
    _against_onnxruntime(model)


@pytest.mark.parametrize(
    ("operand", "flat"),
    [((8,), False), ((1, 24, 1, 1), True), ((1,), True)],
    ids=["along-width", "per-channel", "scalar"],
)
def test_an_epilogue_constant_keeps_its_broadcast(operand, flat):
    """A constant added after the second 1x1 conv: per channel or one number, the
    subgraph stays flat; one that broadcasts along the image's width (shape [8]) would
    broadcast along the flat plane instead, so that subgraph keeps its NCHW shapes."""
    extra = [helper.make_node("Add", ["y0", "k"], ["y"])]
    model = _model(side=8, extra=extra, inits=[_const("k", *operand)])
    tasks = _pointwise_tasks(model)
    second = [t for t in tasks if t.shapes[-1][1] == 24]
    if flat:
        assert second and second[0].shapes[-1] == [1, 24, 1, 64]
    else:
        assert not second
    _against_onnxruntime(model)
