"""Deployable artifacts end to end: zoo:resnet18 and zoo:bert_encoder compiled from a
records database into one shared library, loaded in a fresh process that cannot import
the compiler (nor llvmlite, onnx, prefect, xgboost, pandas), and by a C program built
with gcc; both give the in-process executor's outputs bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from candidates import default_variants

from compiler.records import MeasureRecord, SQLiteStore, host_target_info
from compiler.schedule.default import default_schedule
from compiler.schedule.steps import steps_to_json
from compiler.task import SearchTask
from models.artifact import export_artifact
from models.load import load_graph
from models.network import compile_network
from models.partition import partition
from models.tuned import record_schedules

MODELS = ("resnet18", "bert_encoder")
RECORDED_TASKS = 2  # per model: the largest tasks get a record with a non-default schedule
BLOCKED = ("llvmlite", "onnx", "onnxruntime", "prefect", "xgboost", "pandas", "compiler", "models")
C_CLIENT = Path(__file__).with_name("test_artifact_main.c")

FRESH_PROCESS = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # importing any of them fails
import numpy as np
import deploy
artifact, src, dst = sys.argv[1:4]
session = deploy.Session(artifact, threads=1)
with np.load(src) as feed:
    outputs = session.run(None, dict(feed))
np.savez(dst, **{{o.name: y for o, y in zip(session.get_outputs(), outputs)}})
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}
                      and sys.modules[m] is not None)))
"""


def record_variants(db: Path, model: str) -> dict[str, list]:
    """Records for the largest tasks of `model`: the default schedule with other split
    factors, as a short tuning run would leave. {workload key: steps}."""
    part = partition(load_graph(f"zoo:{model}"))
    recorded = {}
    target = host_target_info().target
    for task in sorted(part.tasks, key=lambda t: -t.flops)[:RECORDED_TASKS]:
        default = steps_to_json(default_schedule(task.dag).steps)
        variants = default_variants(SearchTask(f"task{task.id}", task.dag), 3, seed=1)
        steps = next(s for s in map(steps_to_json, (v.steps for v in variants)) if s != default)
        record = MeasureRecord(task.workload_key, target, steps, (1e-3, 1.1e-3), None,
                               time.time(), task_name=f"{model} task{task.id}")  # fmt: skip
        with SQLiteStore(db) as store:
            store.add([record])
        recorded[task.workload_key] = steps
    return recorded


@dataclass(frozen=True)
class Compiled:
    model: str
    artifact: Path
    recorded: dict[str, list]
    feed: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    work: Path


@pytest.fixture(scope="module", params=MODELS)
def compiled(request, tmp_path_factory) -> Compiled:
    model = request.param
    work = tmp_path_factory.mktemp(model)
    db = work / "records.db"
    recorded = record_variants(db, model)
    export_artifact(f"zoo:{model}", db, work / "artifact")
    schedules = record_schedules(db)
    net = compile_network(load_graph(f"zoo:{model}"), schedule_for=schedules)
    rng = np.random.default_rng(0)
    feed = {v.name: rng.standard_normal(v.shape).astype(np.float32) for v in net.graph.inputs}
    expected = net.run(feed)
    np.savez(work / "inputs.npz", **feed)
    return Compiled(model, work / "artifact", recorded, feed, expected, work)


def test_manifest_says_which_tasks_came_from_records(compiled):
    manifest = json.loads((compiled.artifact / "network.json").read_text())
    assert manifest["format_version"] == 1 and manifest["tool"]["version"]
    tuned = {t["workload_key"]: t for t in manifest["tasks"] if t["tuned"]}
    assert set(tuned) == set(compiled.recorded)
    for key, task in tuned.items():
        assert task["steps"] == compiled.recorded[key]
        assert task["schedule"] == "record" and task["record"]["latency_s"] == 1e-3
    untuned = [t for t in manifest["tasks"] if not t["tuned"]]
    assert untuned and all(t["schedule"] == "default" and t["record"] is None for t in untuned)
    for kind in ("library", "weights"):
        size = (compiled.artifact / manifest[kind]["file"]).stat().st_size
        assert size == manifest[kind]["bytes"]
    names = [v["name"] for v in manifest["inputs"]]
    assert names == list(compiled.feed)
    assert "avx2" in manifest["target"]["cpu_flags"].values()


def test_fresh_process_without_the_compiler_gives_the_same_bits(compiled):
    out = compiled.work / "fresh.npz"
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(compiled.artifact),
         str(compiled.work / "inputs.npz"), str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # none of the blocked packages got imported
    with np.load(out) as got:
        assert set(got.files) == set(compiled.expected)
        for name, want in compiled.expected.items():
            assert np.array_equal(got[name], want), name


def test_c_program_gives_the_same_bits(compiled, tmp_path):
    program = tmp_path / "client"
    art = compiled.artifact
    build = [
        "gcc", "-O2", "-std=c11", "-Wall", "-Werror", f"-I{art}", str(C_CLIENT),
        str(art / "model.so"), f"-Wl,-rpath,{art}", "-o", str(program),
    ]  # fmt: skip
    done = subprocess.run(build, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    inputs = []
    for name, array in compiled.feed.items():
        inputs.append(tmp_path / f"{name}.bin")
        array.tofile(inputs[-1])
    outputs = [tmp_path / f"out{k}.bin" for k in range(len(compiled.expected))]
    done = subprocess.run([str(program), *map(str, inputs + outputs)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr)
    for path, want in zip(outputs, compiled.expected.values()):
        got = np.fromfile(path, dtype=want.dtype).reshape(want.shape)
        assert np.array_equal(got, want)


def test_an_exported_language_model_with_token_inputs(tmp_path):
    """The tiny BERT fixture (int64 input_ids, attention_mask, token_type_ids) as an
    artifact: the numpy runtime gives the executor's bits."""
    import deploy
    from models.load import parse_input_shapes

    model = str(Path(__file__).parent / "data" / "tiny_bert.onnx")
    shapes = parse_input_shapes(["input_ids=1,16"])
    export_artifact(model, None, tmp_path / "bert", input_shapes=shapes)
    session = deploy.Session(tmp_path / "bert")
    assert [i.type for i in session.get_inputs()] == ["tensor(int64)"] * 3
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.integers(0, 2, i.shape).astype(np.int64) for i in session.get_inputs()}
    net = compile_network(load_graph(model, shapes))
    want = net.run(feeds)
    got = session.run(None, feeds)
    assert all(np.array_equal(g, want[v.name]) for g, v in zip(got, net.graph.outputs))
