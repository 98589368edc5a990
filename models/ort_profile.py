"""Per-task times for the report: our tuned and default kernels timed in isolation, and
onnxruntime's time in the same ONNX nodes, from its profiler, mapped to our tasks.

`profile_network(model, records, threads)` gives the content of a run directory's
`profile.json`:

    {"model", "threads", "peak": {...machine peak...},
     "tasks": [{"id", "tuned_s", "default_s", "onnxruntime_s", "tuned", "onnxruntime_nodes",
                "cost_model_accuracy"}],
     "latency_ms", "onnxruntime_latency_ms", "onnxruntime_unmapped_s", "onnxruntime_runs"}

- `tuned_s` / `default_s`: one call of the task's kernel (its best record on this
  CPU, else the default schedule; and the default schedule), on seeded random
  inputs, `threads` OpenMP threads, the two timed round by round (interleaved),
  the best round's mean per call. Per occurrence: weight x tuned_s is the task's
  share of `latency_ms` (the sum over tasks).
- `cost_model_accuracy` (with records; null under RANKING_MIN_RECORDS valid ones):
  how well the XGBoost cost model ranks the task's candidates: trained on the
  earlier half of its valid records (time order), the fraction of pairs of the
  later half it orders as their measured costs do (0.5 is chance). The report's
  diagnosis calls a low one a search problem.
- `onnxruntime_s`: seconds per inference onnxruntime spends in the nodes mapped to
  the task, summed over all its occurrences (comparable to weight x tuned_s);
  `onnxruntime_latency_ms` the mean `model_run` time of the profiled runs (the
  first, warm-up run left out; the profiler adds some overhead per node, so this is
  above `bench`'s figure); `onnxruntime_unmapped_s` what could not be mapped.

Mapping onnxruntime's nodes to our subgraphs (best effort). onnxruntime fuses and
renames nodes: Conv+Relu becomes "fused Conv_3", MatMul+Add becomes
"MatMul_14/MatMulAddFusion", NCHWc convs are named after the original output
value ("relu_8_nchwc", their outputs are new "reorder_token_N" values), Gemm
reshapes are inserted ("gemm_input_reshape_token_2"). The session's optimized
graph is saved (`optimized_model_filepath`) and each of its nodes is mapped by,
in order: (1) its output values that exist in the original model, traced back to
the original node that produced them (through nodes we fold away, like Identity
or BatchNormalization) and so to the subgraph holding it (our `Node.source`
names the original node's index); (2) its name with onnxruntime's decorations
stripped, looked up as an original node or value name; (3) the nearest mapped
node downstream, then upstream, in the optimized graph (inserted reshapes and
reorders). Whatever is left is reported as unmapped.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from compiler.codegen import build
from compiler.cost_model import create as create_cost_model
from compiler.lower.lower import lower
from compiler.measure.peak import machine_peak
from compiler.records import RecordStore
from compiler.runtime import Kernel, aligned, load, set_num_threads
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from models.load import load_proto
from models.network import default_schedule_for, passive_thread_wait
from models.onnx_import import import_model
from models.partition import Partition, TuningTask, partition
from models.tuned import RecordSchedules, record_schedules

ROUNDS = 5  # interleaved timing rounds per task
MIN_ROUND_S = 0.002  # one round lasts at least this long
ORT_RUNS = 10  # profiled inferences (after one warm-up)
# valid records a task needs for a ranking accuracy: one Ansor round, so the model learns
# from 32 and is judged on 496 pairs. With a warm-up's 20 (10 and 45 pairs) the figure was
# noise, 0.29-0.56 on resnet18's tasks, and called 15 of 18 layers a search problem.
RANKING_MIN_RECORDS = 64
RANKING_MAX_RECORDS = 256  # the latest this many are used (feature extraction costs)
_SOURCE_INDEX = re.compile(r"#(\d+)\)$")
_DECORATIONS = [
    re.compile(r"^fused "),  # fused Conv_3
    re.compile(r"/.*$"),  # MatMul_14/MatMulAddFusion
    re.compile(r"_nchwc$"),  # relu_8_nchwc
    re.compile(r"(_new_reshape|_token_\d+)+$"),  # Reshape_45_new_reshape, Gelu_token_42
]


def profile_network(
    model_source: str, records_path: str | Path | None, threads: int
) -> dict[str, object]:
    """profile.json's content for `model_source` (a path or zoo:NAME); see the module doc."""
    passive_thread_wait()
    set_num_threads(threads)
    proto = load_proto(model_source)
    part = partition(import_model(proto, label=model_source))
    schedules = record_schedules(records_path) if records_path else None
    tasks = [_task_times(t, schedules) for t in part.tasks]
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


# ------------------------------------------------------------------ our kernels


def _task_times(task: TuningTask, schedules: RecordSchedules | None) -> dict[str, Any]:
    default = _kernel(task, default_schedule_for(task))
    tuned, is_tuned = default, False
    if schedules is not None:
        state = schedules(task)
        is_tuned = task.workload_key in schedules.tuned
        tuned = _kernel(task, state) if is_tuned else default
    tuned_s, default_s = time_interleaved(_bound(tuned), _bound(default))
    if not is_tuned:
        tuned_s = default_s  # the same kernel: one number, not two noisy ones
    return {"id": task.id, "tuned_s": tuned_s, "default_s": default_s, "tuned": is_tuned}


def _kernel(task: TuningTask, state) -> Kernel:
    return load(build(lower(state, name=f"task{task.id}")))


def _bound(kernel: Kernel) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    arrays = [
        aligned(rng.standard_normal(p.shape).astype(np.dtype(p.dtype))) for p in kernel.params
    ]
    return kernel.bind(*arrays)


def time_interleaved(a: Callable[[], None], b: Callable[[], None]) -> tuple[float, float]:
    """Seconds per call of `a` and of `b`: the best of ROUNDS interleaved rounds."""
    a()
    b()
    number = _calls_per_round(a)
    a_s, b_s = [], []
    for _ in range(ROUNDS):
        a_s.append(_mean_call_s(a, number))
        b_s.append(_mean_call_s(b, number))
    return min(a_s), min(b_s)


def _calls_per_round(fn: Callable[[], None]) -> int:
    number = 1
    while _mean_call_s(fn, number) * number < MIN_ROUND_S and number < 1 << 20:
        number *= 4
    return number


def _mean_call_s(fn: Callable[[], None], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def ranking_accuracy(task: TuningTask, store: RecordStore, target: str) -> float | None:
    """Pairwise accuracy of a cost model trained on the task's earlier valid records,
    on its later ones (None with fewer than RANKING_MIN_RECORDS)."""
    recs = sorted(
        (
            r
            for r in store.records(task.workload_key)
            if r.target == target and r.error_kind is None
        ),
        key=lambda r: r.timestamp,
    )[-RANKING_MAX_RECORDS:]
    states, costs = [], []
    for r in recs:
        try:
            states.append(State.replay(task.dag, steps_from_json(r.steps)))
        except (ScheduleError, KeyError, TypeError, ValueError):
            continue  # a record of an older step language
        costs.append(r.mean_cost_s)
    if len(states) < RANKING_MIN_RECORDS:
        return None
    half = len(states) // 2
    model = create_cost_model("xgb", seed=0)
    model.update(states[:half], costs[:half])
    return pairwise_accuracy(model.predict(states[half:]), costs[half:])


def pairwise_accuracy(
    scores: Sequence[float] | np.ndarray, costs_s: Sequence[float]
) -> float | None:
    """Of the pairs with different costs, the fraction whose scores (higher = predicted
    faster) are ordered the same way; a tie in scores counts half. None without pairs."""
    s, c = np.asarray(scores, float), np.asarray(costs_s, float)
    i, j = np.triu_indices(len(c), k=1)
    differ = c[i] != c[j]
    if not differ.any():
        return None
    i, j = i[differ], j[differ]
    faster = c[i] < c[j]
    agree = np.where(s[i] == s[j], 0.5, (s[i] > s[j]) == faster)
    return float(agree.mean())


# ------------------------------------------------------------------ onnxruntime


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


@dataclass
class NodeMap:
    """onnxruntime node name -> our subgraph id: the optimized graph's nodes mapped
    (`mapped`), and any other name by its decorations stripped (`by_name`)."""

    mapped: dict[str, int]
    by_name: Callable[[str], int | None]

    def subgraph(self, name: str) -> int | None:
        found = self.mapped.get(name)
        return found if found is not None else self.by_name(name)


def map_nodes(
    original: onnx.ModelProto, optimized: onnx.ModelProto | None, part: Partition
) -> NodeMap:
    """Map every node of onnxruntime's optimized graph that can be mapped (module doc)."""
    resolve = _value_resolver(original, part)
    by_name = _name_index(original, resolve)
    nodes = list(optimized.graph.node) if optimized is not None else []
    direct: dict[str, int] = {}
    for node in nodes:
        sub = next((s for s in map(resolve, node.output) if s is not None), None)
        if sub is None:
            sub = by_name(node.name)
        if sub is not None:
            direct[node.name] = sub
    mapped = dict(direct)
    for node in nodes:
        if node.name not in mapped:
            sub = _nearest(node, nodes, direct)
            if sub is not None:
                mapped[node.name] = sub
    return NodeMap(mapped, by_name)


def _value_resolver(original: onnx.ModelProto, part: Partition) -> Callable[[str], int | None]:
    """Original value name -> the subgraph computing it (through folded nodes), or None."""
    sub_of_index: dict[int, int] = {}
    for sub in part.subgraphs:
        for node in sub.nodes:
            match = _SOURCE_INDEX.search(node.source)
            if match:
                sub_of_index[int(match.group(1))] = sub.id
    producer = {out: k for k, n in enumerate(original.graph.node) for out in n.output if out}
    memo: dict[str, int | None] = {}

    def resolve(value: str, depth: int = 0) -> int | None:
        if value in memo or depth > 50:
            return memo.get(value)
        memo[value] = None  # cycle guard
        k = producer.get(value)
        if k is not None:
            found = sub_of_index.get(k)
            inputs = original.graph.node[k].input
            for name in inputs if found is None else ():
                found = resolve(name, depth + 1)
                if found is not None:
                    break
            memo[value] = found
        return memo[value]

    return resolve


def _name_index(
    original: onnx.ModelProto, resolve: Callable[[str], int | None]
) -> Callable[[str], int | None]:
    """Node name with onnxruntime's decorations stripped -> subgraph (node or value name)."""
    names: dict[str, int] = {}
    for node in original.graph.node:
        sub = next((s for s in map(resolve, node.output) if s is not None), None)
        if sub is not None:
            names.setdefault(node.name, sub)
            for out in node.output:
                names.setdefault(out, sub)

    def lookup(name: str) -> int | None:
        candidates = [name]
        for pattern in _DECORATIONS:
            candidates.append(pattern.sub("", candidates[-1]))
        return next((names[c] for c in candidates if c in names), None)

    return lookup


def _nearest(
    node: onnx.NodeProto, nodes: list[onnx.NodeProto], direct: dict[str, int]
) -> int | None:
    """The subgraph of the closest directly mapped node downstream, else upstream."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producers: dict[str, onnx.NodeProto] = {}
    for n in nodes:
        for v in n.input:
            consumers.setdefault(v, []).append(n)
        for v in n.output:
            producers[v] = n
    for step in (
        lambda n: [c for v in n.output for c in consumers.get(v, [])],
        lambda n: [producers[v] for v in n.input if v in producers],
    ):
        frontier, seen = [node], {node.name}
        for _ in range(8):
            frontier = [m for n in frontier for m in step(n) if m.name not in seen]
            seen.update(m.name for m in frontier)
            hit = next((direct[m.name] for m in frontier if m.name in direct), None)
            if hit is not None:
                return hit
    return None
