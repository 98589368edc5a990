"""Layout propagation (models/blocked_layout.py): which ops run on blocked data, and
networks compiled that way against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from models.load import load_proto
from models.network import compile_network
from models.onnx_import import import_model
from models.partition import partition


def _ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


def _model() -> onnx.ModelProto:
    """An inverted-residual block of 24 channels (not a whole block of 16), a
    squeeze-excitation gate, a per-channel scale, a concat of whole blocks and a max
    pool; two outputs, one of them mid-network (the caller gets it in NCHW)."""
    rng = np.random.default_rng(0)

    def const(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    inits = [
        const("w0", 24, 3, 3, 3), const("b0", 24),
        const("w1", 96, 24, 1, 1), const("b1", 96),
        const("wd", 96, 1, 3, 3), const("bd", 96),
        const("w2", 24, 96, 1, 1), const("b2", 24),
        const("ws", 24, 24, 1, 1), const("scale", 1, 24, 1, 1),
        const("w4", 32, 24, 1, 1), const("w5", 32, 24, 1, 1), const("w3", 32, 64, 3, 3),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], group=96, pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c2"], ["s2"]),
        helper.make_node("Mul", ["c2", "s2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w2", "b2"], ["c3"]),
        helper.make_node("Add", ["c3", "r0"], ["res"]),
        helper.make_node("GlobalAveragePool", ["res"], ["gp"]),
        helper.make_node("Conv", ["gp", "ws"], ["gs"]),
        helper.make_node("Sigmoid", ["gs"], ["gate"]),
        helper.make_node("Mul", ["res", "gate"], ["se"]),
        helper.make_node("Mul", ["se", "scale"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w4"], ["c5"]),
        helper.make_node("Conv", ["res", "w5"], ["c6"]),
        helper.make_node("Concat", ["c5", "c6"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3"], ["c4"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c4"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "blocked", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 30, 30])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 7, 7]),
         helper.make_tensor_value_info("res", TensorProto.FLOAT, [1, 24, 15, 15])],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_blocked_network_matches_onnxruntime():
    proto = _model()
    graph = import_model(proto, label="blocked")
    ops = _ops(partition(graph).graph)
    assert ops.count("conv2d_blocked") == 7
    assert "depthwise_conv2d_blocked" in ops
    assert "conv2d_nchwc" not in ops and "depthwise_conv2d_nchw" not in ops
    assert ops.count("unblock_channels") == 2  # only for the two outputs
    x = np.random.default_rng(1).standard_normal((1, 3, 30, 30)).astype(np.float32)
    net = compile_network(graph)
    got = net.run({"x": x})
    want = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    for name, ref in zip(("y", "res"), want):
        np.testing.assert_allclose(got[name], ref, rtol=1e-4, atol=1e-4)


def test_mobilenet_v2_runs_blocked_from_the_stem_to_the_pool():
    part = partition(import_model(load_proto("zoo:mobilenet_v2"), label="mobilenet_v2"))
    ops = _ops(part.graph)
    assert ops.count("conv2d_blocked") == 35 and ops.count("depthwise_conv2d_blocked") == 17
    assert ops.count("unblock_channels") == 1  # before the classifier's flatten
    unblock = next(n for n in part.graph.nodes if n.op == "unblock_channels")
    assert part.graph.producer(unblock.inputs[0]).op == "global_avg_pool2d"


def test_winograd_convs_keep_their_region_nchw():
    """ResNet-18's Winograd convs read NCHW: the blocked region stops short of them
    rather than paying a conversion pass; the 7x7 layers (direct convs) run blocked. The
    one conversion before a Winograd conv follows the stem's max pool, which runs
    blocked: converting its quarter-size output once costs less than reading its
    blocked input from NCHW loops."""
    part = partition(import_model(load_proto("zoo:resnet18"), label="resnet18"))
    graph = part.graph
    converted = []
    for node in graph.nodes:
        if node.op == "conv2d_winograd":
            producer = graph.producer(node.inputs[0])
            if producer is not None and producer.op == "unblock_channels":
                converted.append(graph.producer(producer.inputs[0]).op)
    assert converted == ["max_pool2d"]
    pool = next(n for n in graph.nodes if n.op == "max_pool2d")
    assert len(graph.values[pool.inputs[0]].shape) == 5  # blocked in, blocked out
    assert "conv2d_blocked" in _ops(graph) and "conv2d_winograd" in _ops(graph)
