"""Products by constant matrices read them in column panels (compiler/ops/matmul_panels.py,
models/layout.py): the packing, the op against numpy, the rewrite of imported models
against onnxruntime, and the products it leaves alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops import OpError
from compiler.runtime import empty, load
from compiler.schedule.default import default_schedule
from compiler.te.dag import ComputeDAG
from models.network import compile_network
from models.onnx_import import import_model
from models.partition import partition

RNG = np.random.default_rng(0)


def test_panels_hold_the_weight_column_blocks():
    w = RNG.standard_normal((5, 48)).astype(np.float32)
    bp = ops.pack_matmul_weight(w, 16)
    assert bp.shape == (3, 5, 16) and bp.flags.c_contiguous
    k, j = np.meshgrid(np.arange(5), np.arange(48), indexing="ij")
    np.testing.assert_array_equal(bp[j // 16, k, j % 16], w)
    ragged = ops.pack_matmul_weight(w[:, :40], 16)  # the last panel padded with zeros
    assert ragged.shape == (3, 5, 16)
    np.testing.assert_array_equal(ragged[2, :, :8], w[:, 32:40])
    assert not ragged[2, :, 8:].any()


def test_a_product_over_part_of_the_last_panel_matches_numpy():
    """N = 40 on 3 panels: the product computes 40 columns, its reads of the last
    panel's padding masked (a one-row product, as a classifier at batch 1)."""
    a_np = RNG.standard_normal((1, 24)).astype(np.float32)
    w_np = RNG.standard_normal((24, 40)).astype(np.float32)
    out = ops.matmul_panels(te.placeholder((1, 24), name="A"), te.placeholder((3, 24, 16)), 40)
    assert out.shape == (1, 40)
    kernel = load(build(lower(default_schedule(ComputeDAG([out])))))
    result = empty(out.shape)
    result[...] = np.nan
    kernel(a_np, ops.pack_matmul_weight(w_np, 16), result)
    np.testing.assert_allclose(result, a_np @ w_np, rtol=1e-4, atol=1e-4)
    with pytest.raises(OpError, match="49 columns do not fill the last of 3 panels of 16"):
        ops.matmul_panels(te.placeholder((1, 24)), te.placeholder((3, 24, 16)), 49)


@pytest.mark.parametrize("a_shape", [(37, 24), (2, 7, 24), (1, 3, 14, 24)])
def test_the_product_on_panels_matches_numpy(a_shape):
    a_np = RNG.standard_normal(a_shape).astype(np.float32)
    w_np = RNG.standard_normal((24, 64)).astype(np.float32)
    bias_np = RNG.standard_normal(64).astype(np.float32)
    a = te.placeholder(a_shape, name="A")
    bp = te.placeholder((4, 24, 16), name="Bp")
    bias = te.placeholder((64,), name="bias")
    out = ops.relu(ops.add(ops.matmul_panels(a, bp), bias))
    assert out.shape == (*a_shape[:-1], 64)
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    values = {a: a_np, bp: ops.pack_matmul_weight(w_np, 16), bias: bias_np}
    result = empty(out.shape)
    result[...] = np.nan
    kernel(*[values[t] for t in dag.placeholders], result)
    expected = np.maximum(a_np.astype(np.float64) @ w_np + bias_np, 0)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


def test_the_op_names_a_k_mismatch():
    with pytest.raises(OpError, match=r"matmul_panels: A \(3, 8\) has K=8 but B_panels"):
        ops.matmul_panels(te.placeholder((3, 8)), te.placeholder((2, 6, 16)))


def _model(rows: int, columns: int, *, constant: bool = True, gemm: bool = False):
    """x [1, rows, 32] times a weight [32, columns] (a Gemm on 2-D x with transB: the
    weight stored [columns, 32]), plus a bias, then a GELU-like tanh."""
    w = RNG.standard_normal((columns, 32) if gemm else (32, columns)).astype(np.float32)
    b = RNG.standard_normal(columns).astype(np.float32)
    inits = [numpy_helper.from_array(b * 0.1, "b")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows, 32])]
    if constant:
        inits.append(numpy_helper.from_array(w * 0.2, "w"))
    else:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(w.shape)))
    if gemm:
        inits.append(numpy_helper.from_array(np.array([rows, 32], np.int64), "flat"))
        product = [
            helper.make_node("Reshape", ["x", "flat"], ["x2"]),
            helper.make_node("Gemm", ["x2", "w", "b"], ["p"], transB=1),
        ]
        out_shape = [rows, columns]
    else:
        product = [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["p"]),
        ]
        out_shape = [1, rows, columns]
    nodes = [*product, helper.make_node("Tanh", ["p"], ["y"])]
    graph = helper.make_graph(
        nodes, "panels", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _anchors(model: onnx.ModelProto) -> list[str]:
    return [t.ops[t.ops.index(op)] for t in partition(import_model(model)).tasks
            for op in t.ops if "matmul" in op or op == "dense"]  # fmt: skip


@pytest.mark.parametrize(
    "rows,columns,gemm",
    [
        (197, 48, False),
        (14, 48, False),
        (9, 48, True),
        (1, 48, False),
        (14, 72, False),
        (1, 1000, True),
    ],
    ids=["197 rows", "14 rows", "gemm", "one row", "columns not whole panels", "classifier"],
)
def test_products_by_constant_weights_run_on_panels_as_onnxruntime_does(rows, columns, gemm):
    model = _model(rows, columns, gemm=gemm)
    assert _anchors(model) == ["matmul_panels"]
    graph = import_model(model)
    x = RNG.standard_normal(graph.inputs[0].shape).astype(np.float32)
    ours = compile_network(graph).run({"x": x})["y"]
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(ours, ref.run(None, {"x": x})[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "columns,constant", [(48, False), (40, True)], ids=["weight an input", "few columns"]
)
def test_other_products_keep_their_plain_weight(columns, constant):
    """A weight that is an input, or fewer than 4 panels' columns not whole panels (the
    padding would be much of the work)."""
    anchors = _anchors(_model(14, columns, constant=constant))
    assert anchors and "matmul_panels" not in anchors


def test_rows_on_an_outer_axis_keep_the_batched_product():
    """[tokens, 1, features] times a weight (ViT's attention input projection): the
    batched product with its rows outer, not one-row products on panels."""
    w = numpy_helper.from_array(RNG.standard_normal((32, 48)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "outer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [197, 1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [197, 1, 48])], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert _anchors(model) == ["batch_matmul"]


def test_tune_op_takes_the_panel_form_of_a_product():
    from compiler.ops.workloads import op_workload

    dag = op_workload("matmul_panels", "64,48,32")
    assert [t.shape for t in dag.placeholders] == [(64, 32), (3, 32, 16)]
    ragged = op_workload("matmul_panels", "1,1000,32")  # a classifier: 63 panels, 1000 columns
    assert [t.shape for t in ragged.placeholders] == [(1, 32), (63, 32, 16)]
    assert ragged.outputs[0].shape == (1, 1000)
