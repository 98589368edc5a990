"""Import details: old and new opsets against onnxruntime, folding, BatchNorm into conv."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import zoo
from models.compare import max_errors, ort_session
from models.network import compile_network
from models.onnx_import import import_model

RNG = np.random.default_rng(3)


def const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def make(nodes: list, inits: list, x_shape: list[int], outputs: list[str], opset: int):
    graph = helper.make_graph(
        nodes, f"opset{opset}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset <= 13 else 8
    return onnx.shape_inference.infer_shapes(model)


def check(model: onnx.ModelProto, rtol: float = 1e-5) -> None:
    net = compile_network(import_model(model))
    x = RNG.standard_normal(net.graph.inputs[0].shape).astype(np.float32)
    ours = net.run({"x": x})
    session = ort_session(model, threads=1)
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, {"x": x})))
    assert max_errors(ours, theirs)[1] < rtol


def test_opset_11_attribute_forms():
    n = helper.make_node
    nodes = [
        n("Unsqueeze", ["x"], ["u"], axes=[0]),  # [1, 2, 6, 5]
        n("Squeeze", ["u"], ["s"], axes=[0]),
        n("Softmax", ["s"], ["sm"], axis=1),  # before 13: over the flattened axes 1..
        n("Split", ["sm"], ["a", "b"], axis=1, split=[2, 4]),
        n("Clip", ["b", "lo", "hi"], ["c"]),
        n("ReduceMean", ["c"], ["m"], axes=[2], keepdims=1),
        n("Pad", ["a", "pads", "pv"], ["p"], mode="constant"),
        n("Flatten", ["p"], ["f"], axis=1),
        n("Gemm", ["f", "w", "bias"], ["y"], transB=1, alpha=0.5, beta=2.0),
    ]
    inits = [const("lo", np.float32(0.01)), const("hi", np.float32(0.05)),
             const("pads", np.array([0, 0, 1, 0, 0, 2], np.int64)), const("pv", np.float32(0.5)),
             const("w", f32(3, 2 * 8)), const("bias", f32(3))]  # fmt: skip
    check(make(nodes, inits, [2, 6, 5], ["y", "m"], opset=11))


def test_newest_opset_input_forms():
    n = helper.make_node
    nodes = [
        n("ReduceMean", ["x", "axes"], ["m"], keepdims=1),  # axes as an input (18+)
        n("Sub", ["x", "m"], ["d"]),
        n("Split", ["d"], ["a", "b"], axis=2, num_outputs=2),  # num_outputs (18+)
        n("Gelu", ["a"], ["g"]),  # 20+
        n("Gelu", ["b"], ["g2"], approximate="tanh"),
        n("Concat", ["g", "g2"], ["cat"], axis=2),
        n("LayerNormalization", ["cat", "gamma", "beta"], ["ln"], axis=-1),
        n("Reshape", ["ln", "shape"], ["r"], allowzero=0),
        n("Squeeze", ["r", "sq"], ["y"]),
    ]
    inits = [const("axes", np.array([-1], np.int64)), const("gamma", f32(8)),
             const("beta", f32(8)), const("shape", np.array([0, 1, -1], np.int64)),
             const("sq", np.array([1], np.int64))]  # fmt: skip
    check(make(nodes, inits, [3, 4, 8], ["y"], opset=21))


def test_batch_norm_is_folded_into_the_conv_and_passthroughs_disappear():
    graph = import_model(zoo.build("resnet18"))
    ops = {node.op for node in graph.nodes}
    assert "multiply" not in ops and not any("batch" in op for op in ops)
    assert sum(node.op == "conv2d_nchw" for node in graph.nodes) == 20
    assert sum(node.op == "bias_add" for node in graph.nodes) == 21  # 20 convs + fc


def test_shape_arithmetic_is_folded():
    graph = import_model(zoo.build("bert_encoder"))  # heads split via Shape/Slice/Concat
    assert {"reshape", "transpose", "batch_matmul", "softmax", "layer_norm"} <= {
        n.op for n in graph.nodes
    }
    assert all(graph.values[n.output].shape for n in graph.nodes)


def test_batch_norm_without_a_conv_is_a_scale_and_shift():
    n = helper.make_node
    nodes = [n("Relu", ["x"], ["r"]), n("BatchNormalization", ["r", "g", "b", "m", "v"], ["y"])]
    c = 4
    inits = [const("g", f32(c) + 1), const("b", f32(c)), const("m", f32(c)),
             const("v", np.abs(f32(c)) + 0.5)]  # fmt: skip
    check(make(nodes, inits, [1, c, 5, 5], ["y"], opset=15))


def test_newest_opset_against_the_reference_evaluator():
    from onnx.reference import ReferenceEvaluator

    newest = onnx.defs.onnx_opset_version()
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("HardSwish", ["c"], ["h"]),
        n("AveragePool", ["h"], ["p"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
          count_include_pad=0, ceil_mode=1),
        n("ReduceMax", ["p", "axes"], ["m"], keepdims=0),
        n("Softmax", ["m"], ["y"], axis=-1),
    ]  # fmt: skip
    inits = [const("w", f32(8, 3, 3, 3, scale=0.3)), const("b", f32(8)),
             const("axes", np.array([2], np.int64))]  # fmt: skip
    graph = helper.make_graph(
        nodes, "newest", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", newest)])
    model = onnx.shape_inference.infer_shapes(model)
    x = f32(1, 3, 9, 9)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = compile_network(import_model(model)).run({"x": x})["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_shape_arithmetic_chain_folds_and_expand_broadcasts():
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]),  # [2, 3, 4]
        n("Gather", ["s", "i0"], ["b"], axis=0),  # 2 (a scalar)
        n("Unsqueeze", ["b", "ax0"], ["b1"]),  # [2]
        n("Concat", ["b1", "minus1"], ["target"], axis=0),  # [2, -1]
        n("Reshape", ["x", "target"], ["r"]),  # [2, 12]
        n("ConstantOfShape", ["ones_shape"], ["ones"], value=numpy_helper.from_array(
            np.array([1.5], np.float32))),  # [3, 1, 12] of 1.5
        n("Mul", ["r", "ones"], ["m"]),  # broadcast to [3, 2, 12]
        n("Expand", ["m", "big"], ["y"]),  # [2, 3, 2, 12]
    ]  # fmt: skip
    inits = [const("i0", np.array(0, np.int64)), const("ax0", np.array([0], np.int64)),
             const("minus1", np.array([-1], np.int64)),
             const("ones_shape", np.array([3, 1, 12], np.int64)),
             const("big", np.array([2, 1, 1, 1], np.int64))]  # fmt: skip
    model = make(nodes, inits, [2, 3, 4], ["y"], opset=17)
    graph = import_model(model)
    assert {node.op for node in graph.nodes} <= {"reshape", "multiply", "broadcast_to"}
    check(model)


def test_shape_inference_does_not_blow_up_a_long_vector(tmp_path):
    """onnx's data propagation builds a shape of every rank-1 tensor it meets (~140 bytes an
    element): the importer skips it when a vector is long. A 4M-element input (16 MiB) must
    import in about the memory of the interpreter (it took 600 MB with data propagation)."""
    n = 4_000_000
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"], name="add")], "long",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])],
    )  # fmt: skip
    path = tmp_path / "long.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    script = (  # VmHWM: this process's peak resident memory (ru_maxrss counts the parent's)
        "import re, sys\n"
        "from models.onnx_import import import_model\n"
        "graph = import_model(sys.argv[1])\n"
        "assert graph.outputs[0].shape == (4_000_000,)\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1)) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) < 300, f"import peaked at {proc.stdout.split()[-1]} MB"


def test_gather_elements_of_constants_folds_past_32_entries():
    """BERT without token_type_ids gathers its 512 buffered type ids by position: onnx's
    reference GatherElements fails past 32 entries along the axis, the fold does not."""
    n = helper.make_node
    nodes = [
        n("GatherElements", ["table", "positions"], ["types"], axis=1),  # [1, 6] of the table
        n("Cast", ["types"], ["f"], to=TensorProto.FLOAT),
        n("Add", ["x", "f"], ["y"]),
    ]
    table = (np.arange(2 * 512).reshape(2, 512) % 7).astype(np.int64)
    positions = np.array([[500, 3, -1, 40, 0, 100]], np.int64)
    model = make(nodes, [const("table", table), const("positions", positions)], [1, 6], ["y"],
                 opset=17)  # fmt: skip
    graph = import_model(model)
    assert [node.op for node in graph.nodes] == ["add"]
    check(model)


def test_flattened_linear_layers_run_on_the_rows_in_place():
    """Reshape [2, 5, 8] -> [10, 8], Gemm, Reshape back (torch's Linear, GPT-2's Conv1D):
    one batch_matmul and its bias, no reshape copies, the GELU-style tail fused."""
    n = helper.make_node
    nodes = [
        n("Reshape", ["x", "flat"], ["r"]),
        n("Gemm", ["r", "w", "b"], ["g"], transB=1),
        n("Reshape", ["g", "rows"], ["y0"]),
        n("Pow", ["y0", "three"], ["cube"]),
        n("Mul", ["y0", "cube"], ["y"]),
    ]
    inits = [const("flat", np.array([10, 8], np.int64)), const("w", f32(6, 8)),
             const("b", f32(6)), const("rows", np.array([2, 5, 6], np.int64)),
             const("three", np.array(3.0, np.float32))]  # fmt: skip
    model = make(nodes, inits, [2, 5, 8], ["y"], opset=17)
    graph = import_model(model)
    assert [node.op for node in graph.nodes] == ["batch_matmul", "bias_add", "power", "multiply"]
    net = compile_network(graph)
    assert [s.ops for s in net.partition.subgraphs] == [
        ("batch_matmul", "bias_add", "power", "multiply")
    ]
    check(model)
