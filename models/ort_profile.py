"""Per-task times for the report: our tuned and default kernels timed in isolation, and
onnxruntime's time in the same ONNX nodes, from its profiler, mapped to our tasks.

`profile_network(model, records, threads)` gives the content of a run directory's
`profile.json`:

    {"model", "threads", "peak": {...machine peak...},
     "tasks": [{"id", "tuned_s", "default_s", "onnxruntime_s", "tuned", "onnxruntime_nodes",
                "cost_model_accuracy"}],
     "latency_ms", "onnxruntime_latency_ms", "onnxruntime_unmapped_s", "onnxruntime_runs"}

- `tuned_s` / `default_s` (models.kernel_times): one call of the task's kernel (its
  best record on this CPU, else the default schedule; and the default schedule), on
  seeded random inputs, `threads` OpenMP threads, the two timed round by round
  (interleaved), the best round's mean per call. Per occurrence: weight x tuned_s is
  the task's share of `latency_ms` (the sum over tasks).
- `cost_model_accuracy` (models.ranking_accuracy; with records, null under
  RANKING_MIN_RECORDS valid ones): how well the XGBoost cost model ranks the task's
  candidates: trained on the earlier half of its valid records (time order), the
  fraction of pairs of the later half it orders as their measured costs do (0.5 is
  chance). The report's diagnosis calls a low one a search problem.
- `onnxruntime_s`: seconds per inference onnxruntime spends in the nodes mapped to
  the task (models.ort_node_map), summed over all its occurrences (comparable to
  weight x tuned_s); `onnxruntime_latency_ms` the mean `model_run` time of the
  profiled runs (the first, warm-up run left out; the profiler adds some overhead per
  node, so this is above `bench`'s figure); `onnxruntime_unmapped_s` what could not
  be mapped.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from compiler.measure.peak import machine_peak
from compiler.runtime import set_num_threads
from models.kernel_times import task_times
from models.load import load_proto
from models.network import passive_thread_wait
from models.onnx_import import import_model
from models.ort_node_map import map_nodes
from models.partition import Partition, partition
from models.ranking_accuracy import ranking_accuracy
from models.tuned import record_schedules

ORT_RUNS = 10  # profiled inferences (after one warm-up)


def profile_network(
    model_source: str, records_path: str | Path | None, threads: int
) -> dict[str, object]:
    """profile.json's content for `model_source` (a path or zoo:NAME); see the module doc."""
    passive_thread_wait()
    set_num_threads(threads)
    proto = load_proto(model_source)
    part = partition(import_model(proto, label=model_source))
    schedules = record_schedules(records_path) if records_path else None
    tasks = [task_times(t, schedules) for t in part.tasks]
    for row, task in zip(tasks, part.tasks):
        row["cost_model_accuracy"] = (
            ranking_accuracy(task, schedules.store, schedules.target) if schedules else None
        )
    ort_times = onnxruntime_task_times(proto, part, threads)
    for row, task in zip(tasks, part.tasks):
        row["onnxruntime_s"] = ort_times.tasks.get(task.id, 0.0)
        row["onnxruntime_nodes"] = ort_times.nodes.get(task.id, [])
    latency_s = sum(t.weight * row["tuned_s"] for t, row in zip(part.tasks, tasks))
    return {
        "model": model_source,
        "threads": threads,
        "peak": asdict(machine_peak(threads)),
        "tasks": tasks,
        "latency_ms": latency_s * 1e3,
        "onnxruntime_latency_ms": ort_times.latency_s * 1e3,
        "onnxruntime_unmapped_s": ort_times.unmapped_s,
        "onnxruntime_runs": ort_times.runs,
    }


@dataclass(frozen=True)
class OrtTimes:
    """onnxruntime's profile per task id: seconds per inference and the node names."""

    tasks: dict[int, float]
    nodes: dict[int, list[str]]
    unmapped_s: float
    latency_s: float
    runs: int


def onnxruntime_task_times(proto: onnx.ModelProto, part: Partition, threads: int) -> OrtTimes:
    """Per task id: seconds per inference in mapped nodes; plus the run latency."""
    with tempfile.TemporaryDirectory(prefix="sketchtune-ort-") as tmp:
        events, optimized = _profiled_runs(proto, threads, Path(tmp))
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    runs = sorted(runs, key=lambda e: e["ts"])[1:]  # the first run warms up
    if not runs:
        raise RuntimeError("onnxruntime's profile has no model_run events")
    start = runs[0]["ts"]
    node_us: dict[str, float] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time") and e["ts"] >= start:
            key = name.removesuffix("_kernel_time")
            node_us[key] = node_us.get(key, 0.0) + float(e["dur"])
    mapping = map_nodes(proto, optimized, part)
    tasks: dict[int, float] = {}
    nodes: dict[int, list[str]] = {}
    unmapped = 0.0
    for name, us in node_us.items():
        seconds = us / 1e6 / len(runs)
        sub = mapping.subgraph(name)
        if sub is None:
            unmapped += seconds
            continue
        task = part.task_of(part.subgraphs[sub]).id
        tasks[task] = tasks.get(task, 0.0) + seconds
        nodes.setdefault(task, []).append(name)
    latency_s = statistics.mean(float(e["dur"]) for e in runs) / 1e6
    return OrtTimes(tasks, nodes, unmapped, latency_s, len(runs))


def _profiled_runs(
    proto: onnx.ModelProto, threads: int, tmp: Path
) -> tuple[list[dict], onnx.ModelProto | None]:
    """Profile ORT_RUNS + 1 inferences; the trace events and the optimized graph."""
    opts = ort.SessionOptions()  # as models.compare.ort_session, plus profiling
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / "ort_profile")
    opts.optimized_model_filepath = str(tmp / "optimized.onnx")
    opts.log_severity_level = 3  # the NCHWc serialization warning is expected here
    session = ort.InferenceSession(
        proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds = {
        i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(
            np.float32
        )
        for i in session.get_inputs()
    }
    for _ in range(ORT_RUNS + 1):
        session.run(None, feeds)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    saved = tmp / "optimized.onnx"
    optimized = onnx.load(str(saved), load_external_data=False) if saved.is_file() else None
    return events, optimized
