"""onnxruntime's profile mapped to our tasks, and the per-task kernel times (profile.json)."""

from __future__ import annotations

import json

import pytest
from onnx import helper
from test_reports_fixture import PEAK, run_copy, tuned_run

from compiler.records import SQLiteStore, host_target_info
from models.load import load_proto
from models.onnx_import import import_model
from models.ort_node_map import map_nodes
from models.ort_profile import profile_network
from models.partition import partition
from models.ranking_accuracy import pairwise_accuracy, ranking_accuracy
from reports import report_tables


@pytest.fixture(scope="module")
def mlp():
    proto = load_proto("zoo:mlp")
    return proto, partition(import_model(proto, label="zoo:mlp"))


def test_nodes_map_by_outputs_by_stripped_names_and_by_neighbours(mlp):
    proto, part = mlp
    # our subgraphs: 0 = Gemm_3+Relu_4, 1 = Gemm_7+Relu_8, 2 = Gemm_11, 3 = Softmax_12
    assert part.subgraphs[0].ops == ("matmul", "bias_add", "relu")
    nodes = [
        # onnxruntime's Gemm+Relu fusion keeps the Relu's output value
        helper.make_node("FusedGemm", ["input", "w"], ["relu_4"], name="fused Gemm_3"),
        # an NCHWc-style node: named after the original output, its output is new
        helper.make_node("Conv", ["relu_4"], ["reorder_token_0"], name="relu_8_nchwc"),
        # an inserted reshape: mapped to its consumer, Gemm_11
        helper.make_node("Reshape", ["reorder_token_0"], ["tmp"], name="gemm_input_reshape"),
        helper.make_node("Gemm", ["tmp", "w2"], ["gemm_11"], name="MatMul_9/MatMulAddFusion"),
        # through the Identity we fold away, "probs" is the Softmax's subgraph
        helper.make_node("Softmax", ["gemm_11"], ["probs"], name="Softmax_12"),
        helper.make_node("Mystery", ["nothing"], ["nowhere"], name="island"),
    ]
    graph = helper.make_graph(nodes, "optimized", [], [])
    mapping = map_nodes(proto, helper.make_model(graph), part)
    assert mapping.mapped == {
        "fused Gemm_3": 0,
        "relu_8_nchwc": 1,
        "gemm_input_reshape": 2,
        "MatMul_9/MatMulAddFusion": 2,
        "Softmax_12": 3,
    }
    assert mapping.subgraph("island") is None
    # names not in the optimized graph are looked up with decorations stripped
    assert mapping.subgraph("fused Gemm_7") == 1
    assert mapping.subgraph("Relu_4_token_3") == 0


@pytest.fixture(scope="module")
def profile():
    return profile_network("zoo:mlp", tuned_run() / "records.db", threads=1)


def test_profile_network_times_every_task_and_maps_all_of_onnxruntime(profile):
    meta = json.loads((tuned_run() / "run.json").read_text())
    tasks = profile["tasks"]
    assert [t["id"] for t in tasks] == [t["id"] for t in meta["tasks"]]
    for t in tasks:
        assert t["tuned"] is True  # every task has a record in the run's database
        assert t["tuned_s"] > 0 and t["default_s"] > 0 and t["onnxruntime_s"] > 0
        assert t["onnxruntime_nodes"]
        assert t["cost_model_accuracy"] is None  # 8 records per task: too few to rank
    assert profile["onnxruntime_unmapped_s"] == 0.0
    weights = {t["id"]: t["weight"] for t in meta["tasks"]}
    latency_s = sum(weights[t["id"]] * t["tuned_s"] for t in tasks)
    assert profile["latency_ms"] == pytest.approx(latency_s * 1e3)
    assert profile["onnxruntime_latency_ms"] > 0 and profile["onnxruntime_runs"] >= 1
    assert profile["peak"]["gflops"] > 0 and profile["threads"] == 1
    json.dumps(profile)  # plain JSON


def test_without_records_the_tuned_time_is_the_default(mlp):
    got = profile_network("zoo:mlp", None, threads=1)
    assert all(not t["tuned"] and t["tuned_s"] == t["default_s"] for t in got["tasks"])


def test_the_report_reads_the_profile(profile, tmp_path):
    run = run_copy(tmp_path / "run")
    (run / "profile.json").write_text(json.dumps(profile))
    layers = report_tables(run, peak=PEAK)["layers"]
    assert layers["speedup_vs_default"].notna().all()
    assert (layers["onnxruntime_vs_ours"] > 0).all()
    by_id = {t["id"]: t["onnxruntime_s"] for t in profile["tasks"]}
    assert layers["onnxruntime_s"].tolist() == [by_id[i] for i in layers["task_id"]]


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
