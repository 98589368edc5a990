"""The Prefect pipeline's cost: `sketchtune tune zoo:resnet18` with a fixed budget,
wall time split into Prefect (temporary server start and orchestration inside the
flow), search (sketches, search rounds, model updates), building and measuring,
candidates measured per minute, and the tuned latency next to onnxruntime's
(measured by the flow's final check, interleaved in the same process).

The run is a real `sketchtune tune ... --json` subprocess with fresh records; the
flow reports its phase times (tasks/phase_clock.py: the union of the intervals
its task bodies ran) and the orchestration remainder.

    python tests/bench/bench_pipeline.py [--model zoo:resnet18] [--trials 360] [--json]
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


def run(model: str, trials: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PREFECT_HOME=str(Path(tmp, "prefect")))
        env.pop("PREFECT_API_URL", None)  # Prefect's temporary server, as a user gets it
        cmd = [sys.executable, "-m", "flows.cli", "tune", model, "--trials", str(trials),
               "--threads", str(threads), "--records", str(Path(tmp, "records.db")),
               "--out", str(Path(tmp, "run")), "--json"]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        process_s = time.perf_counter() - start
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:resnet18")
    parser.add_argument("--trials", type=int, default=360)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with human_output(args.json):
        got = run(args.model, args.trials, args.threads)
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


if __name__ == "__main__":
    main()
