"""Per-task times for the report: our tuned and default kernels timed in isolation, and
our kernels and onnxruntime's nodes timed alike inside whole-network runs, onnxruntime's
mapped to our tasks.

`profile_network(model, records, threads)` gives the content of a run directory's
`profile.json`:

    {"model", "threads", "peak": {...machine peak...},
     "tasks": [{"id", "tuned_s", "default_s", "network_s", "onnxruntime_s", "tuned",
                "onnxruntime_nodes", "onnxruntime_note", "cost_model_accuracy"}],
     "latency_ms", "network_latency_ms", "onnxruntime_latency_ms", "onnxruntime_runs",
     "onnxruntime_unmapped_s", "onnxruntime_unplaced": [{"node", "op", "s", "reason",
     "tasks"}], "compared"}

- `tuned_s` / `default_s` (models.kernel_times): one call of the task's kernel (its
  best record on this CPU, else the default schedule; and the default schedule), on
  seeded random inputs, `threads` threads, the two timed round by round
  (interleaved), the best round's mean per call: the fastest the kernel runs alone, with
  warm caches. Per occurrence: weight x tuned_s is the task's share of `latency_ms`.
- `network_s` and `onnxruntime_s`, the like-with-like pair the report compares (both
  in seconds per inference, summed over the task's occurrences): ORT_RUNS whole-network
  runs of onnxruntime's session (its profiler on) and of our compiled network (the
  tuned kernels, every call timed) after one warm-up each, the two alternating run by
  run, each node's and each call's median over the runs, summed per task (a run slowed
  by another process does not count). `onnxruntime_s` is the time in the nodes
  models.ort_node_map places on the task; it is null, with the reason in
  `onnxruntime_note`, when a node onnxruntime runs computes part of the task and part
  of another, or could not be placed next to it: no figure rather than a wrong one.
  `network_latency_ms` and `onnxruntime_latency_ms` are the median run times (the
  profiler and our per-call timers add a little per node, so both are above `bench`'s);
  `onnxruntime_unmapped_s` the time in nodes on no task, listed in `onnxruntime_unplaced`.
  onnxruntime's worker threads do not spin between its runs here, as ours do not
  (models.network.passive_thread_wait), so neither steals the cores from the other.
- `cost_model_accuracy` (models.ranking_accuracy; with records, null under
  RANKING_MIN_RECORDS valid ones): how well the XGBoost cost model ranks the task's
  candidates: trained on the earlier half of its valid records (time order), the
  fraction of pairs of the later half it orders as their measured costs do (0.5 is
  chance). The report's diagnosis calls a low one a search problem.
"""

from __future__ import annotations

import bisect
import json
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from compiler.measure.peak import machine_peak
from compiler.runtime import set_num_threads
from models.kernel_times import NetworkTimer, seeded_input, task_kernels, task_times
from models.load import load_proto
from models.network import passive_thread_wait
from models.onnx_import import import_model
from models.ort_node_map import Placement, map_nodes
from models.partition import Partition, partition
from models.ranking_accuracy import ranking_accuracy
from models.tuned import record_schedules

ORT_RUNS = 10  # profiled inferences of each (after one warm-up)
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}  # fmt: skip


def compared(runs: int) -> str:
    """How `network_s` and `onnxruntime_s` were measured (profile.json's `compared`)."""
    return (
        f"inside whole-network runs ({runs} of each after a warm-up, onnxruntime's and ours "
        "alternating): each onnxruntime node (its profiler) and each of our kernel calls (a "
        "clock around it), the median over the runs, summed per task"
    )


def profile_network(
    model_source: str, records_path: str | Path | None, threads: int,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, object]:  # fmt: skip
    """profile.json's content for `model_source` (a path or zoo:NAME); see the module doc."""
    passive_thread_wait()
    set_num_threads(threads)
    proto = load_proto(model_source)
    part = partition(import_model(proto, input_shapes=input_shapes, label=model_source))
    schedules = record_schedules(records_path, threads) if records_path else None
    kernels = [task_kernels(t, schedules) for t in part.tasks]
    tasks = [task_times(t, schedules, k) for t, k in zip(part.tasks, kernels)]
    for row, task in zip(tasks, part.tasks):
        row["cost_model_accuracy"] = (
            ranking_accuracy(task, schedules.store, schedules.target) if schedules else None
        )
    network = NetworkTimer(part, {t.workload_key: k.tuned for t, k in zip(part.tasks, kernels)})
    ort_times = onnxruntime_task_times(proto, part, threads, between=network.run)
    ours = network.task_s()
    for row, task in zip(tasks, part.tasks):
        row["network_s"] = ours[task.id]
        row["onnxruntime_s"] = ort_times.tasks.get(task.id)
        row["onnxruntime_nodes"] = ort_times.nodes.get(task.id, [])
        row["onnxruntime_note"] = ort_times.notes.get(task.id, "")
    latency_s = sum(t.weight * row["tuned_s"] for t, row in zip(part.tasks, tasks))
    return {
        "model": model_source,
        "threads": threads,
        "peak": asdict(machine_peak(threads)),
        "tasks": tasks,
        "latency_ms": latency_s * 1e3,
        "network_latency_ms": network.latency_s() * 1e3,
        "onnxruntime_latency_ms": ort_times.latency_s * 1e3,
        "onnxruntime_unmapped_s": ort_times.unmapped_s,
        "onnxruntime_unplaced": ort_times.unplaced,
        "onnxruntime_runs": ort_times.runs,
        "compared": compared(ort_times.runs),
    }


@dataclass(frozen=True)
class OrtTimes:
    """onnxruntime's profile per task id: seconds per inference (None: not comparable,
    `notes` says why), the node names, the nodes on no task and the run latency."""

    tasks: dict[int, float | None]
    nodes: dict[int, list[str]]
    notes: dict[int, str]
    unmapped_s: float
    unplaced: list[dict]
    latency_s: float
    runs: int


def onnxruntime_task_times(
    proto: onnx.ModelProto,
    part: Partition,
    threads: int,
    between: Callable[[], None] | None = None,
) -> OrtTimes:
    """Per task id: seconds per inference in the nodes placed on it; `between` runs after
    each of onnxruntime's inferences (our network's timed run)."""
    with tempfile.TemporaryDirectory(prefix="sketchtune-ort-") as tmp:
        events, optimized = _profiled_runs(proto, threads, Path(tmp), between)
    node_s, op_of, latency_s, runs = _per_node_medians(events)
    mapping = map_nodes(proto, optimized, part)
    task_of = {s: t.id for t in part.tasks for s in t.subgraphs}
    tasks: dict[int, float | None] = {t.id: 0.0 for t in part.tasks}
    nodes: dict[int, list[str]] = defaultdict(list)
    blocked: dict[int, list[tuple[float, str]]] = defaultdict(list)
    unmapped, unplaced = 0.0, []
    for name, seconds in node_s.items():
        place = mapping.placement(name)
        if place.subgraph is not None:
            task = task_of[place.subgraph]
            tasks[task] = (tasks[task] or 0.0) + seconds
            nodes[task].append(name)
            continue
        unmapped += seconds
        ids = sorted({task_of[s] for s in place.blocks})
        op = place.op or op_of.get(name, "")
        unplaced.append({"node": name, "op": op, "s": seconds, "reason": place.reason,
                         "tasks": ids})  # fmt: skip
        for task in ids:
            blocked[task].append((seconds, _why(name, op, place, ids)))
    notes: dict[int, str] = {}
    for task, why in blocked.items():
        tasks[task] = None
        more = f" (and {len(why) - 1} more node{'s' * (len(why) > 2)})" if len(why) > 1 else ""
        notes[task] = f"not compared: {max(why)[1]}{more}"  # the node with the most time
    for task, seconds in tasks.items():
        if seconds == 0.0 and not nodes.get(task):
            notes[task] = "onnxruntime runs no node for it"
    return OrtTimes(tasks, dict(nodes), notes, unmapped, unplaced, latency_s, runs)


def _per_node_medians(events: list[dict]) -> tuple[dict[str, float], dict[str, str], float, int]:
    """From the trace: per node, the median over the counted runs of its seconds in a
    run; its op type; the median run (the first run warms up and is left out); the runs."""
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    runs = sorted(runs, key=lambda e: e["ts"])[1:]
    if not runs:
        raise RuntimeError("onnxruntime's profile has no model_run events")
    starts = [float(e["ts"]) for e in runs]
    per_run: dict[str, list[float]] = {}
    op_of: dict[str, str] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        k = bisect.bisect_right(starts, float(e["ts"])) - 1
        if k < 0 or float(e["ts"]) > starts[k] + float(runs[k]["dur"]):
            continue  # the warm-up run, or between runs
        key = name.removesuffix("_kernel_time")
        per_run.setdefault(key, [0.0] * len(runs))[k] += float(e["dur"]) / 1e6
        op_of[key] = str((e.get("args") or {}).get("op_name", ""))
    node_s = {name: statistics.median(times) for name, times in per_run.items()}
    latency_s = statistics.median(float(e["dur"]) for e in runs) / 1e6
    return node_s, op_of, latency_s, len(runs)


def _why(name: str, op: str, place: Placement, tasks: list[int]) -> str:
    """`onnxruntime's SkipLayerNormalization 'SkipLayerNormalization_3' computes
    Add+LayerNormalization, parts of several of our subgraphs (tasks 1, 8)`."""
    listed = ", ".join(str(t) for t in tasks)
    return f"onnxruntime's {op} {name!r} {place.reason} (task{'s' * (len(tasks) > 1)} {listed})"


def _profiled_runs(
    proto: onnx.ModelProto, threads: int, tmp: Path, between: Callable[[], None] | None
) -> tuple[list[dict], onnx.ModelProto | None]:
    """Profile ORT_RUNS + 1 inferences (`between` after each); the trace events and the
    optimized graph."""
    opts = ort.SessionOptions()  # as models.compare.ort_session, plus profiling
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / "ort_profile")
    opts.optimized_model_filepath = str(tmp / "optimized.onnx")
    opts.log_severity_level = 3  # the NCHWc serialization warning is expected here
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # module doc
    session = ort.InferenceSession(
        proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)  # the values NetworkTimer feeds ours
    feeds = {
        i.name: seeded_input(
            rng, tuple(d if isinstance(d, int) else 1 for d in i.shape), _ORT_TYPES[i.type]
        )
        for i in session.get_inputs()
    }
    for _ in range(ORT_RUNS + 1):
        session.run(None, feeds)
        if between is not None:
            between()
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    saved = tmp / "optimized.onnx"
    optimized = onnx.load(str(saved), load_external_data=False) if saved.is_file() else None
    return events, optimized
