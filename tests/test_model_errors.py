"""Bad models get one line naming the file (and node) and exit code 2 from the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_helpers import save, single_op_model
from onnx import TensorProto, helper
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_bad(args: list[str], *fragments: str) -> str:
    code, out, err = run_cli(*args)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_missing_file(tmp_path):
    assert_bad(["tasks", str(tmp_path / "nope.onnx")], "nope.onnx", "no such file")


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x0a\xff\xff\xff\xff garbage")
    assert_bad(["tasks", str(path)], "junk.onnx")


def test_truncated_file(tmp_path):
    good = save(single_op_model("Relu", [1, 4]), tmp_path / "good.onnx")
    data = Path(good).read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert_bad(["tasks", str(path)], "truncated.onnx")


def test_checker_failure(tmp_path):
    model = single_op_model("Relu", [1, 4])
    model.graph.node[0].input[0] = "undefined_value"  # reads a value nothing defines
    path = save(model, tmp_path / "broken.onnx")
    assert_bad(["tasks", path], "broken.onnx", "checker")


def test_every_unsupported_op_type_in_one_message(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("LRN", ["a"], ["b"], name="lrn_1", size=3),
        helper.make_node("Det", ["b"], ["c"], name="det_2"),
        helper.make_node("LRN", ["c"], ["y"], name="lrn_3", size=3),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    line = assert_bad(["tasks", save(model, tmp_path / "m.onnx")], "m.onnx", "LRN", "Det")
    assert "lrn_1 (LRN, #1)" in line and "det_2 (Det, #2)" in line


def test_dynamic_dimension_needs_input_shape(tmp_path):
    path = save(single_op_model("Relu", ["batch", 4]), tmp_path / "dyn.onnx")
    assert_bad(["tasks", path], "dyn.onnx", "'x'", "--input-shape x=")
    code, out, _ = run_cli("tasks", path, "--input-shape", "x=2,4", "--json")
    assert code == 0
    assert json.loads(out)["tasks"][0]["shapes"] == [[2, 4], [2, 4]]


def test_bad_input_shape_option(tmp_path):
    path = save(single_op_model("Relu", ["batch", 4]), tmp_path / "dyn.onnx")
    assert_bad(["tasks", path, "--input-shape", "x=2,a"], "--input-shape")
    assert_bad(["tasks", path, "--input-shape", "y=2,4"], "dyn.onnx", "'y'")


@pytest.mark.parametrize("command", ["bench", "tasks"])
def test_input_shape_over_the_size_limit(tmp_path, command):
    """A 14.6 TiB input (over SKETCHTUNE_MAX_TENSOR_BYTES): one line at once, no allocation."""
    path = save(single_op_model("Relu", ["batch", 4]), tmp_path / "dyn.onnx")
    start = time.perf_counter()
    assert_bad([command, path, "--input-shape", "x=1000000000000,4"], "--input-shape", "'x'",
               "(1000000000000, 4)", "14.6 TiB", "more than the limit")  # fmt: skip
    assert time.perf_counter() - start < 10


def test_non_float32_input(tmp_path):
    model = single_op_model("Relu", [1, 4], elem_type=TensorProto.FLOAT16)
    assert_bad(["tasks", save(model, tmp_path / "half.onnx")], "half.onnx", "'x'", "FLOAT16")


def test_non_float32_computed_tensor_names_the_node(tmp_path):
    node = helper.make_node("Cast", ["x"], ["y"], name="cast_node", to=TensorProto.FLOAT16)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    line = assert_bad(["tasks", save(model, tmp_path / "cast.onnx")], "cast.onnx")
    assert "cast_node (Cast, #0)" in line and "FLOAT16" in line


def test_op_argument_error_names_the_node(tmp_path):
    w = np.zeros((4, 3, 3, 3), np.float32)  # expects 3 channels, the input has 5
    model = single_op_model("Conv", [1, 5, 8, 8], inits={"w": w}, extra_inputs=("w",))
    line = assert_bad(["tasks", save(model, tmp_path / "conv.onnx")], "conv.onnx")
    assert "conv_node (Conv, #0)" in line


def test_unknown_zoo_model():
    assert_bad(["bench", "zoo:nope"], "zoo:nope", "mlp")


def test_zoo_lists_models():
    code, out, _ = run_cli("zoo", "--json")
    assert code == 0
    names = [m["name"] for m in json.loads(out)["models"]]
    assert {"zoo:mlp", "zoo:resnet18", "zoo:mobilenet_v2", "zoo:bert_encoder"} <= set(names)
    assert "zoo:squeezenet" in names


def test_tasks_json_keys():
    code, out, _ = run_cli("tasks", "zoo:mlp", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["model"] == "zoo:mlp"
    for task in summary["tasks"]:
        assert {"id", "ops", "shapes", "weight", "flops"} <= set(task)


def test_bench_json_keys():
    code, out, err = run_cli("bench", "zoo:mlp", "--threads", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    keys = {"model", "threads", "latency_ms", "onnxruntime_latency_ms", "max_abs_err",
            "max_rel_err", "tuned_tasks", "untuned_tasks"}  # fmt: skip
    assert keys <= set(summary)
    assert summary["max_rel_err"] < 1e-4
    assert (summary["tuned_tasks"], summary["untuned_tasks"]) == (0, 4)


def test_bench_uses_the_best_record_of_a_task(tmp_path):
    from compiler.records import MeasureRecord, SQLiteStore, host_target_info
    from compiler.schedule.default import default_schedule
    from compiler.schedule.steps import steps_to_json
    from models.load import load_graph
    from models.partition import partition

    task = partition(load_graph("zoo:mlp")).tasks[0]
    steps = steps_to_json(default_schedule(task.dag).steps)
    record = MeasureRecord(task.workload_key, host_target_info().target, steps, (1e-5,), None, 0.0)
    path = tmp_path / "records.db"
    with SQLiteStore(path) as db:
        db.add([record])
    code, out, err = run_cli("bench", "zoo:mlp", "--records", str(path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["tuned_tasks"], summary["untuned_tasks"]) == (1, 3)
    assert summary["max_rel_err"] < 1e-4


def test_bench_missing_records_database(tmp_path):
    assert_bad(["bench", "zoo:mlp", "--records", str(tmp_path / "none.db")], "none.db")


def test_onnx_model_roundtrip_sanity():
    assert onnx.defs.onnx_opset_version() >= 17
