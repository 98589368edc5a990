"""Integer and boolean tensors through import, partition and the executor, against
onnxruntime; types sketchtune does not take named in one line; --input-shape binding the
symbolic dimensions of every input; function ops expanded into their bodies."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from flows.cli import app
from models.compare import ort_session
from models.errors import ModelError
from models.network import compile_network
from models.onnx_import import import_model

RNG = np.random.default_rng(11)
T = TensorProto


def model(nodes: list, inputs: list, outputs: list, inits: tuple = (), opset: int = 17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run_both(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    """Ours (compiled, default schedules) equals onnxruntime exactly, dtypes included."""
    net = compile_network(import_model(proto))
    ours = net.run(feeds)
    session = ort_session(proto, threads=1)
    names = [o.name for o in session.get_outputs()]
    for name, ref in zip(names, session.run(names, feeds)):
        assert ours[name].dtype == ref.dtype, name
        np.testing.assert_allclose(ours[name], ref, rtol=1e-6, atol=1e-6, err_msg=name)


def test_integer_and_bool_inputs_outputs_and_intermediates():
    n = helper.make_node
    nodes = [
        n("Equal", ["ids", "zero"], ["pad"]),  # int64 -> bool
        n("Not", ["pad"], ["keep"]),
        n("Cast", ["keep"], ["keep_i32"], to=T.INT32),  # bool -> int32 (an output)
        n("Add", ["counts", "keep_i32"], ["total"]),  # int32 arithmetic
        n("Greater", ["total", "one"], ["many"]),
        n("And", ["many", "flags"], ["both"]),  # bool inputs
        n("Where", ["both", "ids", "minus"], ["picked"]),  # int64 branches
        n("Cast", ["small"], ["small_i64"], to=T.INT64),  # uint8 -> int64
        n("Mul", ["picked", "small_i64"], ["scaled"]),
        n("Cast", ["scaled"], ["out_f"], to=T.FLOAT),
        n("Cast", ["out_f"], ["out_i8"], to=T.INT8),
    ]
    vi = helper.make_tensor_value_info
    inputs = [vi("ids", T.INT64, [2, 9]), vi("counts", T.INT32, [2, 9]),
              vi("flags", T.BOOL, [1, 9]), vi("small", T.UINT8, [2, 1])]  # fmt: skip
    outputs = [vi("keep_i32", T.INT32, [2, 9]), vi("both", T.BOOL, [2, 9]),
               vi("out_f", T.FLOAT, [2, 9]), vi("out_i8", T.INT8, [2, 9])]  # fmt: skip
    inits = [numpy_helper.from_array(np.array(v, d), k) for k, v, d in
             (("zero", 0, np.int64), ("one", 1, np.int32), ("minus", -3, np.int64))]  # fmt: skip
    feeds = {
        "ids": RNG.integers(-2, 3, (2, 9)).astype(np.int64),
        "counts": RNG.integers(-1, 3, (2, 9)).astype(np.int32),
        "flags": RNG.integers(0, 2, (1, 9)).astype(bool),
        "small": np.array([[3], [250]], np.uint8),
    }
    run_both(model(nodes, inputs, outputs, inits), feeds)


def test_embedding_lookup_on_computed_ids_fuses_its_element_wise_neighbours():
    """A float table gathered by int64 ids (negative ones from the end), masked."""
    n = helper.make_node
    table = RNG.standard_normal((30, 16)).astype(np.float32)
    nodes = [
        n("Gather", ["table", "ids"], ["emb"]),
        n("Unsqueeze", ["mask", "axis"], ["mask3"]),
        n("Cast", ["mask3"], ["maskf"], to=T.FLOAT),
        n("Mul", ["emb", "maskf"], ["y"]),
    ]
    vi = helper.make_tensor_value_info
    inits = [numpy_helper.from_array(table, "table"),
             numpy_helper.from_array(np.array([2], np.int64), "axis")]  # fmt: skip
    proto = model(
        nodes, [vi("ids", T.INT64, [3, 7]), vi("mask", T.BOOL, [3, 7])],
        [vi("y", T.FLOAT, [3, 7, 16])], inits,
    )  # fmt: skip
    feeds = {"ids": RNG.integers(-30, 30, (3, 7)).astype(np.int64),
             "mask": RNG.integers(0, 2, (3, 7)).astype(bool)}  # fmt: skip
    run_both(proto, feeds)
    net = compile_network(import_model(proto))
    assert any(s.ops[0] == "gather" and "multiply" in s.ops for s in net.partition.subgraphs)
    assert {v.name: v.dtype for v in net.graph.inputs} == {"ids": "int64", "mask": "bool"}


def test_function_ops_are_expanded_and_fused():
    """Softplus, Mish and Celu have no converter: their ONNX function bodies do, and the
    element-wise chain is one task."""
    n = helper.make_node
    nodes = [n("Softplus", ["x"], ["a"]), n("Mish", ["a"], ["b"]), n("Celu", ["b"], ["y"])]
    vi = helper.make_tensor_value_info
    proto = model(nodes, [vi("x", T.FLOAT, [4, 33])], [vi("y", T.FLOAT, [4, 33])], opset=18)
    run_both(proto, {"x": RNG.standard_normal((4, 33)).astype(np.float32)})
    assert len(compile_network(import_model(proto)).tasks) == 1


def test_unsupported_op_types_are_listed_before_any_type_is_checked():
    n = helper.make_node
    vi = helper.make_tensor_value_info
    nodes = [
        n("LRN", ["x"], ["a"], size=3),
        n("TopK", ["a", "k"], ["y", "i"]),
        n("Det", ["a"], ["z"]),
    ]
    inputs = [vi("x", T.FLOAT16, [4]), vi("k", T.INT64, [1])]
    outputs = [vi("y", T.FLOAT16, [2]), vi("i", T.INT64, [2]), vi("z", T.FLOAT16, [4])]
    with pytest.raises(ModelError) as err:
        import_model(model(nodes, inputs, outputs), label="m.onnx")
    line = str(err.value)
    assert "\n" not in line and "unsupported op types" in line
    assert all(op in line for op in ("LRN", "TopK", "Det")) and "FLOAT16" not in line


@pytest.mark.parametrize(
    "type_proto,words",
    [
        (helper.make_tensor_type_proto(T.FLOAT16, [2]), "FLOAT16 tensor"),
        (helper.make_tensor_type_proto(T.STRING, [2]), "STRING tensor"),
        (helper.make_tensor_type_proto(T.BFLOAT16, [2]), "BFLOAT16 tensor"),
        (helper.make_sequence_type_proto(helper.make_tensor_type_proto(T.FLOAT, [2])),
         "sequence of FLOAT tensor"),
        (helper.make_optional_type_proto(helper.make_tensor_type_proto(T.FLOAT, [2])),
         "optional of FLOAT tensor"),
    ],
)  # fmt: skip
def test_unsupported_input_types_name_themselves(type_proto, words):
    inp = helper.make_value_info("x", type_proto)
    out = helper.make_value_info("y", type_proto)
    proto = model([helper.make_node("Identity", ["x"], ["y"])], [inp], [out])
    with pytest.raises(ModelError) as err:
        import_model(proto, label="m.onnx")
    line = str(err.value)
    assert "\n" not in line and "m.onnx" in line and "'x'" in line and words in line


def test_input_shape_binds_the_symbolic_dims_of_every_input():
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Equal", ["ids", "mask"], ["y"])]
    inputs = [vi("ids", T.INT64, ["batch", "seq"]), vi("mask", T.INT64, ["batch", "seq"])]
    proto = model(nodes, inputs, [vi("y", T.BOOL, ["batch", "seq"])])
    graph = import_model(proto, input_shapes={"ids": (2, 5)})
    assert [(v.name, v.shape, v.dtype) for v in graph.inputs] == [
        ("ids", (2, 5), "int64"), ("mask", (2, 5), "int64")
    ]  # fmt: skip
    with pytest.raises(ModelError, match="dimension 'seq' two sizes"):
        import_model(proto, input_shapes={"ids": (2, 5), "mask": (2, 6)})
    with pytest.raises(ModelError, match="'mask' has a dynamic dimension 'other'"):
        one = model(nodes, [inputs[0], vi("mask", T.INT64, ["batch", "other"])],
                    [vi("y", T.BOOL, ["batch", "seq"])])  # fmt: skip
        import_model(one, input_shapes={"ids": (2, 5)})


def test_several_input_shapes_on_the_command_line(tmp_path):
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Greater", ["a", "b"], ["y"])]
    inputs = [vi("a", T.INT64, ["n", 4]), vi("b", T.INT64, ["m", 4])]
    path = tmp_path / "two.onnx"
    onnx.save(model(nodes, inputs, [vi("y", T.BOOL, ["n", 4])]), str(path))
    args = ["tasks", str(path), "--input-shape", "a=3,4", "--input-shape", "b=1,4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert '"shapes": [[3, 4], [1, 4], [3, 4]]' in result.stdout.replace("\n", "")
    twice = CliRunner().invoke(app, [*args[:4], "--input-shape", "a=2,4"])
    assert twice.exit_code == 2 and "given twice" in twice.stderr
