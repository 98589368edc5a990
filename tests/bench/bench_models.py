"""Every zoo model and every exported-model fixture (tests/data: BERT, GPT-2, ViT, LSTM,
UNet, ...), compiled with default (untuned) schedules, next to onnxruntime.

onnxruntime runs with every graph optimization on and the same intra-op
thread count (each of `--threads`, default 1 then 2); both contenders get the same
seeded input, rounds are interleaved with a settle pause before each contender, and
the ratio is the median of per-round ratios (onnxruntime / ours: > 1 means we are
faster). With several thread counts, `speedup` is our network on each count against the
first, timed interleaved in one more set of rounds (median of per-round ratios: the
figure the multi-core target is about, robust to the load drifting between counts).

    python tests/bench/bench_models.py [--models resnet18,tiny_gpt2] [--threads 1,2]
        [--rounds 7] [--json]

A fixture runs at its saved input's shapes (tests/data/*.npz); a model may also be a
path to an .onnx file (static input shapes), named by its file's stem.

With `--tuned N`, each model is first tuned by the command line (`sketchtune tune`,
sketch policy, gradient scheduler, N trials per task: `--trials N x tasks --per-round
N`, at the first of `--threads`, into a fresh records database), then compiled from
those records and timed the same way: `tuned` rows beside the untuned ones, with the
tuning's wall time. A tuned row's `speedup` is the untuned network's latency over the
tuned one's, the two timed interleaved (rows compared against onnxruntime minutes
apart differ by the machine's drift alone: 12.5 against 13.6 ms for two identical
networks of resnet18 at 2 threads).

    python tests/bench/bench_models.py --models resnet18,/tmp/resnet50.onnx --tuned 20
        --threads 1 [--keep DIR]

`--keep DIR` keeps each tuning's records database and run directory in DIR/MODEL/
(reports, decision log) instead of a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx
from output import human_output, print_json

from compiler.measure.interleave import interleaved_all
from compiler.runtime import set_num_threads
from models import zoo
from models.compare import compare
from models.graph import Graph
from models.network import compile_network, passive_thread_wait
from models.onnx_import import import_model
from models.partition import partition
from models.tuned import record_schedules

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from exported_fixtures import FIXTURES, load

THREADS = (1, 2)


def load_model(name: str) -> tuple[onnx.ModelProto, Graph]:
    """A zoo model, an exported fixture (at its saved input's shapes) or an .onnx path."""
    if name in FIXTURES:
        fixture = load(name)
        proto = fixture.proto()
        return proto, import_model(proto, input_shapes=fixture.input_shapes, label=name)
    if name.endswith(".onnx"):
        proto = onnx.load(name)
        return proto, import_model(proto, label=name)
    proto = zoo.build(name)
    return proto, import_model(proto, label=f"zoo:{name}")


def model_label(name: str) -> str:
    return Path(name).stem if name.endswith(".onnx") else name


def cli_source(name: str) -> tuple[str, list[str]]:
    """What `sketchtune tune` takes for `name`: the model argument, --input-shape flags."""
    if name in FIXTURES:
        fixture = load(name)
        return str(fixture.path), fixture.input_shape_args()
    return (name if name.endswith(".onnx") else f"zoo:{name}"), []


def tune(name: str, graph: Graph, per_task: int, threads: int, records: Path) -> float:
    """Tune `name` with `per_task` trials per task into `records`; the wall seconds."""
    tasks = len(partition(graph).tasks)
    model, shapes = cli_source(name)
    command = [
        sys.executable, "-m", "flows.cli", "tune", model, *shapes,
        "--trials", str(per_task * tasks), "--per-round", str(per_task),
        "--threads", str(threads), "--records", str(records),
        "--out", str(records.parent / "run"), "--no-check", "--no-artifact", "--json",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tuning {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    json.loads(done.stdout)  # the summary: a run that printed none did not finish
    return time.perf_counter() - start


def bench_model(
    name: str,
    rounds: int,
    thread_counts: tuple[int, ...] = THREADS,
    tuned_per_task: int = 0,
    keep: str | None = None,
) -> dict[str, dict[str, float]]:
    proto, graph = load_model(name)
    net = compile_network(graph)
    out: dict[str, dict[str, float]] = {}
    for threads in thread_counts:
        out[f"{threads}"] = _compared(net, proto, threads, rounds)
    if len(thread_counts) > 1:
        for threads, speedup in zip(thread_counts, speedups(net, thread_counts, rounds)):
            out[f"{threads}"]["speedup"] = speedup
    out["compile_s"] = {"seconds": net.compile_s, "tasks": len(net.tasks)}
    if tuned_per_task:
        threads = thread_counts[0]
        with tempfile.TemporaryDirectory(prefix="sketchtune-bench-") as tmp:
            where = Path(keep) / model_label(name) if keep else Path(tmp)
            where.mkdir(parents=True, exist_ok=True)
            records = where / "records.db"
            if records.exists():
                records.unlink()  # a fresh database: the figure is for N trials per task
            wall_s = tune(name, graph, tuned_per_task, threads, records)
            schedules = record_schedules(records, threads)
            tuned = compile_network(graph, schedule_for=schedules, tuned_keys=schedules.tuned)
            row = _compared(tuned, proto, threads, rounds)
            row["speedup"] = tuned_speedup(net, tuned, threads, rounds)
        out[f"tuned {threads}"] = row | {"tuning_s": wall_s, "trials_per_task": tuned_per_task}
    return out


def _compared(net, proto: onnx.ModelProto, threads: int, rounds: int) -> dict[str, float]:
    r = compare(net, proto, threads=threads, rounds=rounds)
    return {
        "latency_ms": r.latency_ms,
        "onnxruntime_latency_ms": r.onnxruntime_latency_ms,
        "ratio": r.ratio,
        "max_rel_err": r.max_rel_err,
    }


def speedups(net, thread_counts: tuple[int, ...], rounds: int) -> list[float]:
    """Each count's latency against the first's, interleaved: median per-round ratio."""

    def at(threads: int):
        def run() -> None:
            set_num_threads(threads)
            net.run_bound()

        return run

    times = interleaved_all([at(t) for t in thread_counts], rounds, repeat=5)
    return [statistics.median(a / b for a, b in zip(times[0], ts)) for ts in times]


def tuned_speedup(untuned, tuned, threads: int, rounds: int) -> float:
    """The untuned network's latency over the tuned one's, timed interleaved at `threads`
    (median per-round ratio): the tuned and untuned rows' ratios against onnxruntime
    come from rounds minutes apart, which this machine's drift can tell apart alone."""
    set_num_threads(threads)
    times = interleaved_all([untuned.run_bound, tuned.run_bound], rounds, repeat=5)
    return statistics.median(a / b for a, b in zip(*times))


def print_table(
    results: dict[str, dict[str, dict[str, float]]], thread_counts: tuple[int, ...] = THREADS
) -> None:
    print(
        f"{'model':<18} {'thr':<9} {'ours ms':>9} {'ort ms':>9} {'ort/ours':>9} "
        f"{'speedup':>8} {'max rel err':>12}"
    )
    for name, per_threads in results.items():
        rows = [(str(t), f"{t:>3}      ") for t in thread_counts]
        rows += [(k, f"{k.split()[1]:>3} tuned") for k in per_threads if k.startswith("tuned")]
        for key, threads in rows:
            r = per_threads[key]
            print(
                f"{name:<18} {threads} {r['latency_ms']:>9.3f} "
                f"{r['onnxruntime_latency_ms']:>9.3f} {r['ratio']:>9.2f} "
                f"{r.get('speedup', 1.0):>8.2f} {r['max_rel_err']:>12.2e}"
            )
    if any("tuned" in k for per_threads in results.values() for k in per_threads):
        print("tuned: ratios below 1 mean onnxruntime is faster; the ISA is on the first line")


def thread_list(text: str) -> tuple[int, ...]:
    """`1,2` -> (1, 2): positive thread counts."""
    try:
        counts = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"thread counts like 1,2, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be positive, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join([*zoo.ZOO, *FIXTURES]))
    parser.add_argument("--threads", type=thread_list, default=THREADS, help="e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tuned", type=int, default=0, help="also tuned, N trials per task")
    parser.add_argument(
        "--keep", default=None, help="keep each tuning's records and run in DIR/MODEL/"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json):
        passive_thread_wait()  # other OpenMP runtimes in the process sleep when idle
        results = {}
        for name in args.models.split(","):
            print(f"benchmarking {name} ...", file=sys.stderr)
            results[model_label(name)] = bench_model(
                name, args.rounds, args.threads, args.tuned, args.keep
            )
        print_table(results, args.threads)
    if args.json:
        print_json(results)


if __name__ == "__main__":
    main()
