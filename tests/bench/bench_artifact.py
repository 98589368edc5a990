"""A deployable artifact (sketchtune compile) next to the in-process executor.

Three figures, on this machine (the first line names it):
- latency: each model compiled both ways from the same schedules (the best records of
  --records, else default schedules), outputs checked equal bit for bit, then
  `Session.run` and `Network.run` timed interleaved round by round on one thread;
  the ratio is the median of per-round ratios (artifact / in-process: < 1.05 is the
  target);
- load: a fresh process imports `deploy`, loads the resnet18 artifact and runs one
  inference (timed from before the import, after Python and numpy started; the files
  are in the page cache, as after a compile); the median of --loads processes;
- per-call overhead: `Session.run` on the smallest network (one Relu on 1x16 floats).

    python tests/bench/bench_artifact.py [--models resnet18,bert_encoder] [--records DB]
                                         [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from output import human_output, print_json
from timing import interleaved_all, median_ratio

from compiler.runtime import set_num_threads
from deploy import Session
from models.artifact import export_artifact
from models.graph import Graph, Node, Value
from models.load import load_graph
from models.network import compile_network, default_schedule_for, passive_thread_wait
from models.tuned import record_schedules

LOAD_PROCESS = """
import sys, time
import numpy as np
start = time.perf_counter()
import deploy
session = deploy.Session(sys.argv[1], threads=1)
feed = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()}
session.run(None, feed)
print(time.perf_counter() - start)
"""


def bench_latency(model: str, records: str | None, rounds: int, work: Path) -> dict[str, float]:
    """Artifact and in-process executor from the same schedules: equal outputs, latencies."""
    graph = load_graph(f"zoo:{model}")
    export_artifact(graph, records, work / model)
    schedule_for = record_schedules(records) if records else default_schedule_for
    net = compile_network(graph, schedule_for=schedule_for)
    session = Session(work / model, threads=1)
    rng = np.random.default_rng(0)
    feed = {v.name: rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs}
    ours, theirs = session.run(None, feed), net.run(feed)
    equal = all(np.array_equal(y, theirs[o.name]) for o, y in zip(session.get_outputs(), ours))
    artifact_s, executor_s = interleaved_all(
        [lambda: session.run(None, feed), lambda: net.run(feed)], rounds, repeat=5
    )
    return {
        "artifact_ms": statistics.median(artifact_s) * 1e3,
        "in_process_ms": statistics.median(executor_s) * 1e3,
        "ratio": median_ratio(executor_s, artifact_s),  # artifact / in-process, per round
        "bit_identical": equal,
    }


def bench_load(artifact: Path, loads: int) -> float:
    """Median seconds from `import deploy` to the end of the first inference."""
    times = []
    for _ in range(loads):
        done = subprocess.run([sys.executable, "-c", LOAD_PROCESS, str(artifact)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        times.append(float(done.stdout))
    return statistics.median(times)


def bench_call_overhead(work: Path, batches: int = 21, calls: int = 2000) -> float:
    """Median microseconds per `Session.run` of a one-Relu network."""
    graph = _one_relu()
    export_artifact(graph, None, work / "relu")
    session = Session(work / "relu", threads=1)
    feed = {"x": np.ones((1, 16), np.float32)}
    for _ in range(calls):
        session.run(None, feed)
    per_call = []
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(calls):
            session.run(None, feed)
        per_call.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(per_call)


def _one_relu() -> Graph:
    x, y = Value("x", (1, 16)), Value("y", (1, 16))
    return Graph("relu", [x], [y], [Node("relu", "relu", ("x",), "y")], {}, {"x": x, "y": y})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,bert_encoder")
    parser.add_argument("--records", default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json), tempfile.TemporaryDirectory() as tmp:
        passive_thread_wait()  # before a library of the process loads libgomp
        set_num_threads(1)
        work = Path(tmp)
        figures: dict[str, object] = {"threads": 1}
        for model in args.models.split(","):
            print(f"benchmarking {model} ...", file=sys.stderr)
            figures[model] = bench_latency(model, args.records, args.rounds, work)
        if (work / "resnet18").exists():
            figures["resnet18_load_first_run_ms"] = bench_load(work / "resnet18", args.loads) * 1e3
        figures["empty_run_us"] = bench_call_overhead(work)
        print_table(figures)
    if args.json:
        print_json(figures)


def print_table(figures: dict[str, object]) -> None:
    print(f"{'model':<14} {'artifact ms':>12} {'in-process ms':>14} {'ratio':>7} {'bits':>6}")
    for name, r in figures.items():
        if isinstance(r, dict):
            print(f"{name:<14} {r['artifact_ms']:>12.3f} {r['in_process_ms']:>14.3f} "
                  f"{r['ratio']:>7.3f} {'same' if r['bit_identical'] else 'DIFF':>6}")  # fmt: skip
    if "resnet18_load_first_run_ms" in figures:
        print(f"resnet18 import + load + first inference: "
              f"{figures['resnet18_load_first_run_ms']:.1f} ms")  # fmt: skip
    print(f"Session.run on a one-Relu network: {figures['empty_run_us']:.1f} us per call")


if __name__ == "__main__":
    main()
