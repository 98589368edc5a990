"""onnxruntime's profile mapped to our tasks, and the per-task kernel times (profile.json).

The mapping tests run onnxruntime's own graph optimizations on small models built here
with the patterns that misled the report on ResNet-50 (issue #30): NCHWc convs with a
fused Relu and a fused residual Add, named after "/a/Relu_output_0"-style values, an
inserted ReorderInput / ReorderOutput, an NCHWc global average pool, a Gemm; and the
SkipLayerNormalization of transformers, which computes parts of two of our tasks.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_reports_fixture import PEAK, run_copy, tuned_run

from compiler.records import SQLiteStore, host_target_info
from models.load import load_proto
from models.onnx_import import import_model
from models.ort_node_map import map_nodes
from models.ort_profile import ORT_RUNS, profile_network
from models.partition import Partition, partition
from models.ranking_accuracy import pairwise_accuracy, ranking_accuracy
from reports import report_tables
from reports.render import display
from reports.tables import NO_NETWORK_TIME


def _weights(*specs: tuple[str, tuple[int, ...]]) -> list[onnx.TensorProto]:
    rng = np.random.default_rng(0)
    return [
        numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)
        for name, shape in specs
    ]


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def conv_model() -> onnx.ModelProto:
    """conv 3x3 + relu -> conv 1x1 + residual add + relu -> global average pool -> gemm,
    named as torch.onnx names nodes ("/a/Conv", output "/a/Conv_output_0")."""
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "a.w", "a.b"], ["/a/Conv_output_0"], name="/a/Conv",
          pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("Relu", ["/a/Conv_output_0"], ["/a/Relu_output_0"], name="/a/Relu"),
        n("Conv", ["/a/Relu_output_0", "b.w", "b.b"], ["/b/Conv_output_0"], name="/b/Conv",
          kernel_shape=[1, 1]),
        n("Add", ["/b/Conv_output_0", "/a/Relu_output_0"], ["/b/Add_output_0"], name="/b/Add"),
        n("Relu", ["/b/Add_output_0"], ["/b/Relu_output_0"], name="/b/Relu"),
        n("GlobalAveragePool", ["/b/Relu_output_0"], ["/pool/GlobalAveragePool_output_0"],
          name="/pool/GlobalAveragePool"),
        n("Flatten", ["/pool/GlobalAveragePool_output_0"], ["/Flatten_output_0"], name="/Flatten"),
        n("Gemm", ["/Flatten_output_0", "fc.w", "fc.b"], ["logits"], name="/fc/Gemm", transB=1),
    ]  # fmt: skip
    inits = _weights(("a.w", (32, 16, 3, 3)), ("a.b", (32,)), ("b.w", (32, 32, 1, 1)),
                     ("b.b", (32,)), ("fc.w", (10, 32)), ("fc.b", (10,)))  # fmt: skip
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16, 14, 14])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])
    return _model(nodes, [x], [y], inits)


def encoder_model() -> onnx.ModelProto:
    """dense (MatMul + bias) + residual add -> layer norm -> softmax, as a BERT layer ends."""
    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "q.w"], ["/dense/MatMul_output_0"], name="/dense/MatMul"),
        n("Add", ["q.b", "/dense/MatMul_output_0"], ["/dense/Add_output_0"], name="/dense/Add"),
        n("Add", ["/dense/Add_output_0", "x"], ["/Add_output_0"], name="/Add"),
        n("LayerNormalization", ["/Add_output_0", "ln.g", "ln.b"], ["/ln/out"],
          name="/ln/LayerNormalization", axis=-1, epsilon=1e-5),
        n("Softmax", ["/ln/out"], ["y"], name="/Softmax", axis=-1),
    ]  # fmt: skip
    inits = _weights(("q.w", (32, 32)), ("q.b", (32,)), ("ln.g", (32,)), ("ln.b", (32,)))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32])
    return _model(nodes, [x], [y], inits)


def optimized(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's optimized graph, as models.ort_profile's session saves it."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return onnx.load(str(Path(tmp) / "opt.onnx"))


def task_of_node(part: Partition, index: int) -> int:
    """Our task computing the original node at `index` (ground truth from the partition)."""
    sub = next(s for s in part.subgraphs if any(n.source.endswith(f"#{index})") for n in s.nodes))
    return part.task_of(sub).id


def placed_tasks(mapping, part: Partition, graph: onnx.ModelProto) -> dict[str, int | None]:
    subs = {s.id: s for s in part.subgraphs}
    out = {}
    for node in graph.graph.node:
        sub = mapping.subgraph(node.name)
        out[node.name] = None if sub is None else part.task_of(subs[sub]).id
    return out


def test_nchwc_convs_pools_reorders_and_gemms_land_on_the_tasks_computing_them():
    proto = conv_model()
    part = partition(import_model(proto, label="conv"))
    graph = optimized(proto)
    placed = placed_tasks(map_nodes(proto, graph, part), part, graph)
    assert None not in placed.values(), placed  # every node placed
    conv_a, conv_b, pool, fc = (task_of_node(part, k) for k in (0, 2, 5, 7))
    assert len({conv_a, conv_b, pool, fc}) == 4
    for node in graph.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        expected = {
            "ReorderInput": conv_a,  # the layout change before the first conv goes with it
            "GlobalAveragePool": pool,
            "ReorderOutput": pool,  # back to NCHW after the pool
            "Flatten": fc,
            "Gemm": fc,
        }.get(node.op_type)
        if node.op_type in ("Conv", "FusedConv"):
            expected = conv_a if attrs.get("kernel_shape") == [3, 3] else conv_b
        elif node.op_type in ("Relu", "Add"):  # not fused (no NCHWc on this CPU)
            expected = placed[node.name] if placed[node.name] in (conv_a, conv_b) else -1
        assert placed[node.name] == expected, (node.op_type, node.name)
    convs = [n for n in graph.graph.node if n.op_type in ("Conv", "FusedConv")]
    assert sorted(placed[n.name] for n in convs) == sorted([conv_a, conv_b])


def test_a_node_computing_parts_of_two_tasks_blocks_both():
    proto = encoder_model()
    part = partition(import_model(proto, label="encoder"))
    dense, norm, softmax = (task_of_node(part, k) for k in (0, 3, 4))
    assert task_of_node(part, 2) == dense  # our dense task holds the residual add
    graph = optimized(proto)
    mapping = map_nodes(proto, graph, part)
    placed = placed_tasks(mapping, part, graph)
    subs = {s.id: part.task_of(s).id for s in part.subgraphs}
    skip = [n for n in graph.graph.node if n.op_type == "SkipLayerNormalization"]
    for node in skip:  # onnxruntime's residual add + layer norm: neither task alone
        place = mapping.placement(node.name)
        assert place.subgraph is None and place.kind == "spans"
        assert sorted(subs[s] for s in place.blocks) == sorted([dense, norm])
        assert "Add+LayerNormalization" in place.reason
    for node in graph.graph.node:
        if node.op_type in ("Gemm", "MatMul", "Reshape"):
            assert placed[node.name] == dense, node.name
        if node.op_type == "Softmax":
            assert placed[node.name] == softmax
        if node.op_type == "LayerNormalization":  # no fusion: placed
            assert placed[node.name] == norm


def _hand_optimized(*nodes: onnx.NodeProto, constants: tuple[str, ...] = ()) -> onnx.ModelProto:
    """An optimized graph as onnxruntime saves it; `constants`: the weights it made."""
    inits = [numpy_helper.from_array(np.zeros(1, np.float32), name) for name in constants]
    return helper.make_model(helper.make_graph(list(nodes), "optimized", [], [], inits))


def test_a_node_that_does_not_trace_blocks_every_task_its_time_may_belong_to():
    proto = conv_model()
    part = partition(import_model(proto, label="conv"))
    conv_a, conv_b, pool, fc = (task_of_node(part, k) for k in (0, 2, 5, 7))
    n = helper.make_node
    graph = _hand_optimized(
        n("ReorderInput", ["input"], ["t0"], name="ReorderInput"),
        n("Conv", ["t0", "w0", "a.b"], ["t1"], name="/a/Relu_output_0_nchwc"),
        n("Conv", ["t1", "w1", "b.b", "t1"], ["t2"], name="/b/Conv_output_0_nchwc"),
        n("Mystery", ["t2"], ["t3"], name="mystery"),  # an op onnxruntime made up: no trace
        n("GlobalAveragePool", ["t3"], ["t4"], name="/pool/GlobalAveragePool_output_0_nchwc"),
        n("ReorderOutput", ["t4"], ["/pool/GlobalAveragePool_output_0"], name="ReorderOutput"),
        n("Flatten", ["/pool/GlobalAveragePool_output_0"], ["/Flatten_output_0"], name="/Flatten"),
        n("Gemm", ["/Flatten_output_0", "fc.w", "fc.b"], ["logits"], name="/fc/Gemm"),
        constants=("w0", "w1"),  # the weights reordered to NCHWc
    )
    mapping = map_nodes(proto, graph, part)
    placed = placed_tasks(mapping, part, graph)
    assert placed["ReorderInput"] == placed["/a/Relu_output_0_nchwc"] == conv_a
    assert placed["/b/Conv_output_0_nchwc"] == conv_b
    assert placed["/Flatten"] == placed["/fc/Gemm"] == fc
    subs = {s.id: part.task_of(s).id for s in part.subgraphs}
    for name in ("mystery", "/pool/GlobalAveragePool_output_0_nchwc", "ReorderOutput"):
        place = mapping.placement(name)
        assert place.subgraph is None and place.kind == "unplaced"
        # the pool's own task (which no node is placed on) and the placed ones around
        assert sorted(subs[s] for s in place.blocks) == sorted([conv_b, pool, fc])
    assert "does not trace" in mapping.placement("mystery").reason


def test_without_the_optimized_graph_or_for_a_name_it_lacks_every_task_is_blocked(mlp):
    proto, part = mlp
    every = tuple(s.id for s in part.subgraphs)
    missing = map_nodes(proto, None, part).placement("fused Gemm_3")
    assert missing.subgraph is None and missing.blocks == every
    assert "did not save" in missing.reason
    graph = _hand_optimized(helper.make_node("Softmax", ["gemm_11"], ["probs"], name="Softmax_12"))
    mapping = map_nodes(proto, graph, part)
    assert mapping.subgraph("Softmax_12") == 3
    assert mapping.placement("elsewhere").blocks == every


@pytest.fixture(scope="module")
def mlp():
    proto = load_proto("zoo:mlp")
    return proto, partition(import_model(proto, label="zoo:mlp"))


@pytest.fixture(scope="module")
def profile():
    return profile_network("zoo:mlp", tuned_run() / "records.db", threads=1)


def test_profile_network_times_every_task_and_maps_all_of_onnxruntime(profile):
    meta = json.loads((tuned_run() / "run.json").read_text())
    tasks = profile["tasks"]
    assert [t["id"] for t in tasks] == [t["id"] for t in meta["tasks"]]
    for t in tasks:
        assert t["tuned"] is True  # every task has a record in the run's database
        assert t["tuned_s"] > 0 and t["default_s"] > 0
        assert t["network_s"] > 0 and t["onnxruntime_s"] > 0  # measured alike, in-network
        assert t["onnxruntime_nodes"] and t["onnxruntime_note"] == ""
        assert t["cost_model_accuracy"] is None  # 8 records per task: too few to rank
    assert profile["onnxruntime_unmapped_s"] == 0.0 and profile["onnxruntime_unplaced"] == []
    weights = {t["id"]: t["weight"] for t in meta["tasks"]}
    latency_s = sum(weights[t["id"]] * t["tuned_s"] for t in tasks)
    assert profile["latency_ms"] == pytest.approx(latency_s * 1e3)
    assert profile["onnxruntime_latency_ms"] > 0 and profile["onnxruntime_runs"] == ORT_RUNS
    assert profile["network_latency_ms"] > 0 and str(ORT_RUNS) in profile["compared"]
    assert profile["peak"]["gflops"] > 0 and profile["threads"] == 1
    json.dumps(profile)  # plain JSON


def test_without_records_the_tuned_time_is_the_default(mlp):
    got = profile_network("zoo:mlp", None, threads=1)
    assert all(not t["tuned"] and t["tuned_s"] == t["default_s"] for t in got["tasks"])


def test_the_report_compares_in_network_times_and_says_why_a_row_is_empty(profile, tmp_path):
    run = run_copy(tmp_path / "run")
    edited = json.loads(json.dumps(profile))
    blocked = edited["tasks"][1]
    blocked["onnxruntime_s"] = None
    blocked["onnxruntime_note"] = "not compared: onnxruntime's X 'y' computes A+B (tasks 1, 2)"
    (run / "profile.json").write_text(json.dumps(edited))
    layers = report_tables(run, peak=PEAK)["layers"].set_index("task_id")
    assert layers["speedup_vs_default"].notna().all()
    for t in edited["tasks"]:
        row = layers.loc[t["id"]]
        assert row["network_s"] == t["network_s"]
        if t["onnxruntime_s"] is None:
            assert math.isnan(row["onnxruntime_s"]) and math.isnan(row["onnxruntime_vs_ours"])
        else:  # like with like: not over our isolated best (weighted_s)
            assert row["onnxruntime_vs_ours"] == pytest.approx(t["onnxruntime_s"] / t["network_s"])
        assert row["onnxruntime_note"] == t["onnxruntime_note"]
    shown = display("layers", layers.reset_index())
    assert (
        shown.loc[1, "onnxruntime / ours"] == ""
        and "tasks 1, 2" in shown.loc[1, "onnxruntime note"]
    )
    assert {"Ours in network (ms)", "onnxruntime in network (ms)"} <= set(shown.columns)


def test_an_older_profile_shows_no_onnxruntime_figure(profile, tmp_path):
    run = run_copy(tmp_path / "run")
    old = json.loads(json.dumps(profile))  # as written before: old mapping, no in-network time
    for t in old["tasks"]:
        del t["network_s"], t["onnxruntime_note"]
    (run / "profile.json").write_text(json.dumps(old))
    layers = report_tables(run, peak=PEAK)["layers"]
    assert layers["onnxruntime_s"].isna().all() and layers["onnxruntime_vs_ours"].isna().all()
    assert (layers["onnxruntime_note"] == NO_NETWORK_TIME).all()
    assert layers["speedup_vs_default"].notna().all()  # the rest of the profile still counts


def test_pairwise_accuracy_counts_pairs_ordered_as_measured():
    costs = [1.0, 2.0, 3.0, 4.0]
    assert pairwise_accuracy([4, 3, 2, 1], costs) == 1.0  # higher score = faster
    assert pairwise_accuracy([1, 2, 3, 4], costs) == 0.0
    assert pairwise_accuracy([0, 0, 0, 0], costs) == 0.5
    assert pairwise_accuracy([4, 3, 1, 2], costs) == pytest.approx(5 / 6)
    assert pairwise_accuracy([1, 2], [1.0, 1.0]) is None


def test_ranking_accuracy_needs_enough_records(mlp, monkeypatch):
    _, part = mlp
    task = part.tasks[0]
    with SQLiteStore(tuned_run() / "records.db") as store:
        target = host_target_info().target
        assert ranking_accuracy(task, store, target) is None  # 8 records < 64
        monkeypatch.setattr("models.ranking_accuracy.RANKING_MIN_RECORDS", 4)
        got = ranking_accuracy(task, store, target)
    assert got is not None and 0.0 <= got <= 1.0


def test_a_badly_ranking_cost_model_is_diagnosed_as_a_search_problem(profile, tmp_path):
    run = run_copy(tmp_path / "run")
    bad = json.loads(json.dumps(profile))
    bad["tasks"][0]["cost_model_accuracy"] = 0.3
    (run / "profile.json").write_text(json.dumps(bad))
    layers = report_tables(run, peak=PEAK)["layers"].set_index("task_id")
    assert layers.loc[0, "diagnosis"] == "search problem"
    assert "pairwise accuracy 0.30" in layers.loc[0, "evidence"]
    assert (layers.drop(index=0)["diagnosis"] != "search problem").all()
