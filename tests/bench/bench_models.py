"""Every zoo model, compiled with default (untuned) schedules, next to onnxruntime.

onnxruntime runs with every graph optimization on and the same intra-op
thread count (1, then 2); both contenders get the same seeded input, rounds
are interleaved with a settle pause before each contender, and the ratio is
the median of per-round ratios (onnxruntime / ours: > 1 means we are faster).

    python tests/bench/bench_models.py [--models resnet18,mlp] [--rounds 7] [--json]
"""

from __future__ import annotations

import argparse
import sys

from output import human_output, print_json

from models import zoo
from models.compare import compare
from models.network import compile_network, passive_thread_wait
from models.onnx_import import import_model

THREADS = (1, 2)


def bench_model(name: str, rounds: int) -> dict[str, dict[str, float]]:
    proto = zoo.build(name)
    net = compile_network(import_model(proto, label=f"zoo:{name}"))
    out: dict[str, dict[str, float]] = {}
    for threads in THREADS:
        r = compare(net, proto, threads=threads, rounds=rounds)
        out[f"{threads}"] = {
            "latency_ms": r.latency_ms,
            "onnxruntime_latency_ms": r.onnxruntime_latency_ms,
            "ratio": r.ratio,
            "max_rel_err": r.max_rel_err,
        }
    out["compile_s"] = {"seconds": net.compile_s, "tasks": len(net.tasks)}
    return out


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(
        f"{'model':<14} {'thr':>3} {'ours ms':>9} {'ort ms':>9} {'ort/ours':>9} {'max rel err':>12}"
    )
    for name, per_threads in results.items():
        for threads in THREADS:
            r = per_threads[str(threads)]
            print(
                f"{name:<14} {threads:>3} {r['latency_ms']:>9.3f} "
                f"{r['onnxruntime_latency_ms']:>9.3f} {r['ratio']:>9.2f} {r['max_rel_err']:>12.2e}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(zoo.ZOO))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json):
        passive_thread_wait()  # before the first kernel loads libgomp
        results = {}
        for name in args.models.split(","):
            print(f"benchmarking {name} ...", file=sys.stderr)
            results[name] = bench_model(name, args.rounds)
        print_table(results)
    if args.json:
        print_json(results)


if __name__ == "__main__":
    main()
