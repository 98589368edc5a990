"""The Prefect pipeline's cost: `sketchtune tune zoo:resnet18` with a fixed budget,
wall time split into Prefect (temporary server start and orchestration inside the
flow), search (sketches, search rounds, model updates), building and measuring,
candidates measured per minute, and the tuned latency next to onnxruntime's
(measured by the flow's final check, interleaved in the same process).

The run is a real `sketchtune tune ... --json` subprocess with fresh records; the
flow reports its phase times (tasks/phase_clock.py: the union of the intervals
its task bodies ran) and the orchestration remainder.

Time to quality (`--minutes M`, a time-boxed run; `--checkpoints`): after the run, the
network as it stood after each checkpoint's minutes (each task's best record measured
by then, counted from the command's start, Prefect's start-up included; the default
schedule where there was none) is compiled and timed interleaved with onnxruntime at
the same thread count, and the first checkpoint at which it is faster is printed.

    python tests/bench/bench_pipeline.py [--model zoo:resnet18] [--trials 360] [--json]
    python tests/bench/bench_pipeline.py --model zoo:resnet18 --minutes 20 \
        [--checkpoints 1,2,3,4,5,7,10,15,20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from output import human_output, print_json


def run(
    model: str, trials: int | None, threads: int, minutes: float | None = None,
    checkpoints: tuple[float, ...] = (),
) -> dict:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PREFECT_HOME=str(Path(tmp, "prefect")))
        env.pop("PREFECT_API_URL", None)  # Prefect's temporary server, as a user gets it
        budget = ([] if trials is None else ["--trials", str(trials)]) + (
            [] if minutes is None else ["--minutes", str(minutes)]
        )
        cmd = [sys.executable, "-m", "flows.cli", "tune", model, *budget,
               "--threads", str(threads), "--records", str(Path(tmp, "records.db")),
               "--out", str(Path(tmp, "run")), "--json"]  # fmt: skip
        started_at = time.time()
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        process_s = time.perf_counter() - start
        quality = (
            time_to_quality(model, Path(tmp, "records.db"), threads, started_at, checkpoints)
            if checkpoints and done.returncode == 0
            else None
        )
    if done.returncode != 0:
        raise SystemExit(f"tune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    t = summary["timings"]
    flow_s = summary["wall_s"]
    startup_s = process_s - flow_s  # interpreter, imports, Prefect's temporary server
    tuning_s = sum(t.get(k, 0.0) for k in ("search_s", "build_s", "measure_s", "learn_s"))
    search_s = sum(t.get(k, 0.0) for k in ("sketches_s", "search_s", "learn_s", "resume_s"))
    return {
        "model": model,
        "trials": summary["trials"],
        "process_s": process_s,
        "flow_s": flow_s,
        "startup_s": startup_s,
        "orchestration_s": t["orchestration_s"],
        "search_s": search_s,
        "build_s": t.get("build_s", 0.0),
        "measure_s": t.get("measure_s", 0.0),
        "final_check_s": sum(t.get(k, 0.0) for k in ("check_s", "profile_s", "reports_s")),
        "prefect_overhead_share": t["orchestration_s"] / flow_s,
        "prefect_overhead_share_with_startup": (t["orchestration_s"] + startup_s) / process_s,
        "candidates_per_min": summary["trials"] / max(tuning_s, 1e-9) * 60,
        "latency_ms": summary["latency_ms"],
        "onnxruntime_latency_ms": summary["onnxruntime_latency_ms"],
        "onnxruntime_over_ours": summary["onnxruntime_latency_ms"] / summary["latency_ms"],
        "stop_reason": summary.get("stop_reason", ""),
        "time_to_quality": quality,
    }


def time_to_quality(
    model: str, records: Path, threads: int, started_at: float, checkpoints: tuple[float, ...]
) -> dict:
    """The network as tuned after each checkpoint (minutes since `started_at`), timed
    interleaved with onnxruntime; the first checkpoint at which it is faster."""
    from models.compare import compare
    from models.load import load_proto
    from models.network import compile_network
    from models.onnx_import import import_model
    from models.tuned import record_schedules

    proto = load_proto(model)
    graph = import_model(proto, label=model)
    last = max(r.timestamp for r in record_schedules(records, threads).store.records())
    rows = []
    for minute in (0.0, *checkpoints):
        until = started_at + minute * 60
        if minute and until > last + 60:  # the run had ended a minute before
            break
        schedules = record_schedules(records, threads, until=until)
        net = compile_network(graph, schedule_for=schedules)
        r = compare(net, proto, threads=threads, rounds=7)
        rows.append({"minutes": minute, "tuned_tasks": len(schedules.tuned),
                     "latency_ms": r.latency_ms, "onnxruntime_latency_ms": r.onnxruntime_latency_ms,
                     "onnxruntime_over_ours": r.ratio})  # fmt: skip
        print(f"  after {minute:4.1f} min: ours {r.latency_ms:.3f} ms, onnxruntime "
              f"{r.onnxruntime_latency_ms:.3f} ms ({r.ratio:.2f}x), "
              f"{len(schedules.tuned)} tasks tuned", file=sys.stderr)  # fmt: skip
    passed = next((row["minutes"] for row in rows if row["onnxruntime_over_ours"] > 1.0), None)
    return {"checkpoints": rows, "minutes_to_pass_onnxruntime": passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:resnet18")
    parser.add_argument("--trials", type=int, default=None, help="default 360 without --minutes")
    parser.add_argument("--minutes", type=float, default=None, help="a time-boxed run")
    parser.add_argument(
        "--checkpoints",
        default="1,2,3,4,5,7,10,15,20",
        help="minutes at which the tuned network is timed (with --minutes)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trials = 360 if args.trials is None and args.minutes is None else args.trials
    checkpoints = (
        tuple(float(m) for m in args.checkpoints.split(",") if float(m) <= args.minutes)
        if args.minutes is not None
        else ()
    )
    with human_output(args.json):
        got = run(args.model, trials, args.threads, args.minutes, checkpoints)
        print_table(got, args.threads)
    if args.json:
        print_json(got)


def print_table(got: dict, threads: int) -> None:
    print(f"{got['model']}: {got['trials']} trials, {threads} thread(s)")
    for key in ("process_s", "startup_s", "flow_s", "orchestration_s", "search_s", "build_s",
                "measure_s", "final_check_s"):  # fmt: skip
        print(f"  {key:<18} {got[key]:8.1f} s  ({got[key] / got['process_s']:.0%} of the process)")
    print(f"  Prefect overhead in the flow      {got['prefect_overhead_share']:.1%}")
    print(f"  Prefect overhead with its startup {got['prefect_overhead_share_with_startup']:.1%}")
    print(f"  candidates measured per minute    {got['candidates_per_min']:.0f}")
    print(f"  latency: ours {got['latency_ms']:.2f} ms, onnxruntime "
          f"{got['onnxruntime_latency_ms']:.2f} ms (onnxruntime/ours "
          f"{got['onnxruntime_over_ours']:.2f}x)")  # fmt: skip
    quality = got.get("time_to_quality")
    if quality:
        passed = quality["minutes_to_pass_onnxruntime"]
        print("  faster than onnxruntime " + ("at no checkpoint" if passed is None else
              f"after {passed:g} min"))  # fmt: skip


if __name__ == "__main__":
    main()
