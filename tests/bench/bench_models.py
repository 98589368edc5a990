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

A fixture runs at its saved input's shapes (tests/data/*.npz).
"""

from __future__ import annotations

import argparse
import statistics
import sys
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

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from exported_fixtures import FIXTURES, load

THREADS = (1, 2)


def load_model(name: str) -> tuple[onnx.ModelProto, Graph]:
    """A zoo model or an exported fixture (at its saved input's shapes)."""
    if name in FIXTURES:
        fixture = load(name)
        proto = fixture.proto()
        return proto, import_model(proto, input_shapes=fixture.input_shapes, label=name)
    proto = zoo.build(name)
    return proto, import_model(proto, label=f"zoo:{name}")


def bench_model(
    name: str, rounds: int, thread_counts: tuple[int, ...] = THREADS
) -> dict[str, dict[str, float]]:
    proto, graph = load_model(name)
    net = compile_network(graph)
    out: dict[str, dict[str, float]] = {}
    for threads in thread_counts:
        r = compare(net, proto, threads=threads, rounds=rounds)
        out[f"{threads}"] = {
            "latency_ms": r.latency_ms,
            "onnxruntime_latency_ms": r.onnxruntime_latency_ms,
            "ratio": r.ratio,
            "max_rel_err": r.max_rel_err,
        }
    if len(thread_counts) > 1:
        for threads, speedup in zip(thread_counts, speedups(net, thread_counts, rounds)):
            out[f"{threads}"]["speedup"] = speedup
    out["compile_s"] = {"seconds": net.compile_s, "tasks": len(net.tasks)}
    return out


def speedups(net, thread_counts: tuple[int, ...], rounds: int) -> list[float]:
    """Each count's latency against the first's, interleaved: median per-round ratio."""

    def at(threads: int):
        def run() -> None:
            set_num_threads(threads)
            net.run_bound()

        return run

    times = interleaved_all([at(t) for t in thread_counts], rounds, repeat=5)
    return [statistics.median(a / b for a, b in zip(times[0], ts)) for ts in times]


def print_table(
    results: dict[str, dict[str, dict[str, float]]], thread_counts: tuple[int, ...] = THREADS
) -> None:
    print(
        f"{'model':<18} {'thr':>3} {'ours ms':>9} {'ort ms':>9} {'ort/ours':>9} "
        f"{'speedup':>8} {'max rel err':>12}"
    )
    for name, per_threads in results.items():
        for threads in thread_counts:
            r = per_threads[str(threads)]
            print(
                f"{name:<18} {threads:>3} {r['latency_ms']:>9.3f} "
                f"{r['onnxruntime_latency_ms']:>9.3f} {r['ratio']:>9.2f} "
                f"{r.get('speedup', 1.0):>8.2f} {r['max_rel_err']:>12.2e}"
            )


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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json):
        passive_thread_wait()  # other OpenMP runtimes in the process sleep when idle
        results = {}
        for name in args.models.split(","):
            print(f"benchmarking {name} ...", file=sys.stderr)
            results[name] = bench_model(name, args.rounds, args.threads)
        print_table(results, args.threads)
    if args.json:
        print_json(results)


if __name__ == "__main__":
    main()
