"""Each subgraph's time inside whole inferences against its time alone.

The tuner times a kernel alone, called again and again on the same arrays, so
its weights stay in the caches. Inside an inference every other layer runs in
between. This script compiles a zoo model (from tuning records, or default
schedules), runs `--rounds` inferences timing every call, then times every call
alone (the median of 20 back-to-back calls), and prints per call the two
medians and their ratio, and the sums: the estimate the tuner and the reports
use (sum alone) against the inference (sum in situ).

    python tests/bench/bench_in_situ.py [--model resnet18] [--records runs/records.db]
        [--threads 1] [--rounds 30] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from output import human_output, print_json

from compiler.runtime.threads import set_num_threads
from models.load import load_graph
from models.network import compile_network, default_schedule_for, passive_thread_wait
from models.tuned import record_schedules


def per_call_times(calls: list, rounds: int) -> tuple[np.ndarray, list[float]]:
    """(per round and call, seconds inside inferences; per call, the median alone)."""
    for _ in range(5):
        for call in calls:
            call()
    situ = np.zeros((rounds, len(calls)))
    for r in range(rounds):
        for i, call in enumerate(calls):
            t = time.perf_counter()
            call()
            situ[r, i] = time.perf_counter() - t
    alone = []
    for call in calls:
        for _ in range(3):
            call()
        times = []
        for _ in range(20):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        alone.append(statistics.median(times))
    return situ, alone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="a zoo model")
    parser.add_argument(
        "--records", default=None, help="tuning records (default schedules without)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with human_output(args.json):
        passive_thread_wait()
        set_num_threads(args.threads)
        graph = load_graph(f"zoo:{args.model}")
        if args.records:
            schedules = record_schedules(args.records)
            net = compile_network(graph, schedule_for=schedules, tuned_keys=schedules.tuned)
        else:
            net = compile_network(graph, schedule_for=default_schedule_for)
        rng = np.random.default_rng(0)
        for value in graph.inputs:
            net.buffers[value.name][...] = rng.random(value.shape)
        situ, alone = per_call_times(net.calls, args.rounds)
        median = np.median(situ, axis=0)
        rows = [
            {
                "call": i,
                "ops": "+".join(node.op for node in sub.nodes),
                "in_situ_ms": float(median[i]) * 1e3,
                "alone_ms": alone[i] * 1e3,
                "ratio": float(median[i]) / alone[i],
            }
            for i, sub in enumerate(net.partition.subgraphs)
        ]
        out = {
            "model": args.model,
            "threads": args.threads,
            "sum_in_situ_ms": float(median.sum()) * 1e3,
            "sum_alone_ms": sum(alone) * 1e3,
            "inference_ms": float(np.median(situ.sum(axis=1))) * 1e3,
            "calls": rows,
        }
        for row in rows:
            print(
                f"{row['call']:3d} {row['ops'][:34]:34s} in situ {row['in_situ_ms']:7.3f} ms"
                f"  alone {row['alone_ms']:7.3f} ms  ratio {row['ratio']:.2f}"
            )
        print(
            f"sum in situ {out['sum_in_situ_ms']:.2f} ms, sum alone {out['sum_alone_ms']:.2f} ms "
            f"(inference {out['inference_ms']:.2f} ms)"
        )
    if args.json:
        print_json(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
