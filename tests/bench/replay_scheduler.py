"""Task-scheduling strategies replayed on measured per-task curves, against the oracle.

Step 1 (measures, about 7 min for resnet18 and 4 for bert_encoder per seed on
this machine): a round-robin run of `--collect-passes` passes with no per-task
early stopping, `sketch` policy, 1 thread, each task's default schedule in its
first round (what bench_scheduler.py runs), its decision log kept in
`--work-dir` and reused when there. Step 2 (no measuring, seconds): for every
budget of `--passes` round-robin passes, round-robin and `gradient` (for each
`--forward` estimate, over `--replay-seeds` epsilon-greedy seeds) are replayed
on those curves with bench_scheduler's settings (20-trial rounds, per-task
early stopping after 60 trials without a 1 % gain), and
`compiler.task_scheduler.replay.oracle_trials` gives the fewest trials any
allocation needs to reach round-robin's final f. Printed per model, seed and
budget: round-robin's final f, the trials gradient needs to reach it (median
over the replay seeds) and the oracle's, each also as a share of the budget
(bench_scheduler's target: gradient within 60 %).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/replay_scheduler.py \
        [--models resnet18,bert_encoder,/tmp/nets/resnet50.onnx] [--seeds 0] [--collect-passes 8] \
        [--passes 3,4,5] [--work-dir runs/replay] [--json]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path

import bench_scheduler
from output import human_output, print_json

from compiler.policies import create as create_policy
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler, read_decision_log
from compiler.task_scheduler.gradient import FORWARD_KINDS
from compiler.task_scheduler.replay import curves_from_log, oracle_trials, replay, trials_to_reach
from models.load import load_graph
from models.network import passive_thread_wait
from models.partition import partition

PER_TASK = 20


def collect(model: str, seed: int, passes: int, work: Path) -> Path:
    """The decision log of a long round-robin run (measured unless already in `work`)."""
    name = bench_scheduler.model_name(model)
    log = work / f"{name}_s{seed}_p{passes}" / f"{name}_s{seed}_round-robin.jsonl"
    if log.is_file():
        return log
    args = argparse.Namespace(
        per_task=PER_TASK, passes=passes, checkpoints_per_pass=1, threads=1, baseline=True,
        policy="sketch", alpha=0.2, short_history=False, forward="ansor", early_stopping=0,
        warmup_from=None,
    )  # fmt: skip
    run_dir = log.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    start = bench_scheduler.warm_up(model, seed, args, run_dir)
    bench_scheduler.tune(model, "round-robin", seed, args, run_dir, start)
    return log


@functools.cache
def model_tasks(model: str) -> tuple[SearchTask, ...]:
    """The model's tasks, partitioned once per model (every replay needs a fresh scheduler)."""
    tasks = partition(load_graph(bench_scheduler.model_spec(model))).tasks
    return tuple(SearchTask(f"task{t.id}", t.dag, t.weight) for t in tasks)


def scheduler_for(model: str, strategy: str, seed: int, forward: str = "ansor") -> TaskScheduler:
    search_tasks = model_tasks(model)
    policies = [create_policy("random", t.dag) for t in search_tasks]  # never asked
    return TaskScheduler(search_tasks, policies, strategy=strategy, per_round=PER_TASK,
                         seed=seed, early_stopping=3 * PER_TASK, forward=forward)  # fmt: skip


def share(trials: int | None, budget: int) -> str:
    return "never" if trials is None else f"{trials} ({trials / budget:.0%})"


def replay_budget(model: str, log: Path, passes: int, forwards: list[str], seeds: int) -> dict:
    rr = scheduler_for(model, "round-robin", 0)
    curves = curves_from_log(read_decision_log(log), len(rr.tasks))
    budget = passes * PER_TASK * len(rr.tasks)
    rr_run = replay(rr, curves, budget)
    rr_trials, rr_f = rr_run.points[-1]
    oracle = oracle_trials(curves, [t.weight for t in rr.tasks], rr_f)
    out: dict[str, object] = {
        "passes": passes,
        "rr_trials": rr_trials,
        "rr_f_ms": rr_f * 1e3,
        "oracle_trials_to_rr_final_f": oracle,
        "rr_curve_ends": rr_run.curve_ends,
    }
    for forward in forwards:
        reach, finals, ends = [], [], 0
        for s in range(seeds):
            run = replay(scheduler_for(model, "gradient", s, forward), curves, budget)
            reach.append(trials_to_reach(run.points, rr_f))
            finals.append(run.points[-1][1] * 1e3)
            ends += run.curve_ends
        out[f"gradient_{forward}_trials_to_rr_final_f"] = bench_scheduler.median_or_never(reach)
        out[f"gradient_{forward}_within_60pct"] = sum(
            r is not None and r <= 0.6 * rr_trials for r in reach
        ) / len(reach)
        out[f"gradient_{forward}_f_ms"] = statistics.median(finals)
        out[f"gradient_{forward}_curve_ends"] = ends
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,bert_encoder")
    parser.add_argument("--seeds", default="0", help="comma-separated: one measured run each")
    parser.add_argument("--collect-passes", type=int, default=8)
    parser.add_argument("--passes", default="3,4,5", help="budgets to replay, in passes")
    parser.add_argument("--forward", default=",".join(FORWARD_KINDS))
    parser.add_argument("--replay-seeds", type=int, default=10)
    parser.add_argument("--work-dir", default="runs/replay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with human_output(args.json):
        results = replay_all(args)
    if args.json:
        print_json(results)
    return 0


def replay_all(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every model, seed and budget; prints a line each."""
    passive_thread_wait()
    work = Path(args.work_dir)
    forwards = args.forward.split(",")
    results: dict[str, list[dict]] = {}
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            log = collect(model, seed, args.collect_passes, work)
            for passes in (int(p) for p in args.passes.split(",")):
                row = replay_budget(model, log, passes, forwards, args.replay_seeds)
                row["seed"] = seed
                results.setdefault(model, []).append(row)
                budget = row["rr_trials"]
                text = ", ".join(
                    f"gradient[{f}] {share(row[f'gradient_{f}_trials_to_rr_final_f'], budget)}"
                    for f in forwards
                )
                print(f"{model} seed {seed}, {passes} passes: round-robin f "
                      f"{row['rr_f_ms']:.3f} ms after {budget} trials; reached by "
                      f"{text}; oracle {share(row['oracle_trials_to_rr_final_f'], budget)}",
                      flush=True)  # fmt: skip
    return results


if __name__ == "__main__":
    sys.exit(main())
