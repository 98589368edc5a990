"""Task scheduler: `gradient` against `round-robin` on whole networks, same budget.

For zoo resnet18 and the zoo bert_encoder: each strategy tunes the network's
tasks from a fresh records database and a fresh cost model, with the same
total budget (`--per-task` trials per task per round-robin pass, `--passes`
passes; one round = `--per-task` trials; each task's default schedule is
measured in its first round unless `--no-baseline`). After every pass-equivalent the
estimated latency f is noted and the records so far are kept as a checkpoint.
At the end every checkpoint's network (each task's best record among the
first N, the default schedule where there is none) is compiled and timed
interleaved round by round with onnxruntime (same thread count, all graph
optimizations), so all measured latencies of a model come from one window of
this drifting machine. Reported: f and measured latency against trials for
both strategies, onnxruntime's latency, and how many trials gradient needed
to reach round-robin's final measured latency (target: <= 60 % of them).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_scheduler.py \
        [--models resnet18,bert_encoder] [--per-task 20] [--passes 4] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from timing import SETTLE_S, best_s

from compiler.cost_model import create as create_model
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.records import SQLiteStore, host_target_info
from compiler.runtime import set_num_threads
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.search.policy import create as create_policy
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler, read_decision_log
from models.compare import max_errors, ort_session, seeded_inputs
from models.load import load_graph, load_proto
from models.network import Network, compile_network, default_schedule_for, passive_thread_wait
from models.partition import TuningTask, partition

STRATEGIES = ("round-robin", "gradient")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Checkpoint:
    trials: int
    f_s: float | None
    records: int  # the first `records` rows of the database make this checkpoint
    latency_ms: float = float("nan")


@dataclass
class Run:
    strategy: str
    db: Path
    checkpoints: list[Checkpoint] = field(default_factory=list)
    f_history: list[tuple[int, float]] = field(default_factory=list)  # (total trials, f_s)
    wall_s: float = 0.0


def tune(model: str, strategy: str, args: argparse.Namespace, work: Path) -> Run:
    """Tune every task of `model` under `strategy`, checkpoints along the way."""
    tasks = partition(load_graph(f"zoo:{model}")).tasks
    search_tasks = [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in tasks]
    cost_model = create_model("xgb", seed=args.seed)  # shared by every task of the run
    policies = [
        create_policy(args.policy, t.dag, model=cost_model, seed=args.seed + k)
        for k, t in enumerate(search_tasks)
    ]
    run = Run(strategy, work / f"{model}_{strategy}.db")
    if run.db.exists():
        raise SystemExit(f"bench_scheduler: {run.db} exists; each run needs a fresh --work-dir")
    log = work / f"{model}_{strategy}.jsonl"
    baselines = [default_schedule_for(t) for t in tasks] if args.baseline else None
    sched = TaskScheduler(search_tasks, policies, strategy=strategy, per_round=args.per_task,
                          seed=args.seed, log_path=log, baselines=baselines)  # fmt: skip
    step_trials = args.per_task * len(tasks) // args.checkpoints_per_pass
    store = SQLiteStore(run.db)
    settings = MeasureSettings(threads=args.threads)
    start = time.perf_counter()
    with (
        create_builder("local") as builder,
        create_runner("local", settings=settings, devices="default") as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        steps = args.passes * args.checkpoints_per_pass
        for p in range(steps):
            sched.tune(measurer, step_trials, on_round=progress(model, strategy))
            f = sched.objective_value
            run.checkpoints.append(Checkpoint(sched.total_trials, f, store.count()))
            say(f"[{model} {strategy}] checkpoint {p + 1}/{steps}: {sched.total_trials} trials, "
                f"f {f * 1e3:.3f} ms, {time.perf_counter() - start:.0f} s")  # fmt: skip
    run.wall_s = time.perf_counter() - start
    run.f_history = [
        (line["total_trials"], line["f_s"]) for line in read_decision_log(log) if line["f_s"]
    ]
    store.close()
    return run


def progress(model: str, strategy: str):
    def show(line: dict) -> None:
        f = f"{line['f_s'] * 1e3:.3f} ms" if line["f_s"] else "-"
        say(f"  [{model} {strategy}] round {line['round']} {line['choice']:<11} "
            f"{line['task_name'][:40]:<40} trials {line['total_trials']:>5} f {f}")  # fmt: skip

    return show


def checkpoint_schedules(db: Path, first_n: int):
    """A `schedule_for`: each task's best valid record among the first `first_n` rows."""
    target = host_target_info().target
    best: dict[str, tuple[float, list[dict]]] = {}
    with SQLiteStore(db) as store:
        for k, rec in enumerate(store.records()):
            if k >= first_n:
                break
            if rec.target == target and rec.error_kind is None:
                cost = rec.mean_cost_s
                if cost < best.get(rec.workload_key, (float("inf"), []))[0]:
                    best[rec.workload_key] = (cost, rec.steps)

    def schedule_for(task: TuningTask) -> State:
        if task.workload_key in best:
            try:
                state = State.replay(task.dag, steps_from_json(best[task.workload_key][1]))
                if state.is_complete:
                    return state
            except ScheduleError:
                pass
        return default_schedule_for(task)

    return schedule_for


def time_networks(model: str, nets: list[Network], threads: int, rounds: int):
    """Median per-round latency (ms) of every network and of onnxruntime, interleaved;
    and the max relative error of each network against onnxruntime."""
    set_num_threads(threads)
    session = ort_session(load_proto(f"zoo:{model}"), threads)
    inputs = seeded_inputs(nets[0])
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(names, inputs)))
    errors = [max_errors(net.run(inputs), reference)[1] for net in nets]
    contenders = [net.run_bound for net in nets] + [lambda: session.run(names, inputs)]
    times: list[list[float]] = [[] for _ in contenders]
    for _ in range(rounds):
        for fn, got in zip(contenders, times):
            time.sleep(SETTLE_S)
            got.append(best_s(fn, 3))
    medians = [statistics.median(t) * 1e3 for t in times]
    return medians[:-1], medians[-1], errors


def trials_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    return next((trials for trials, value in points if value <= target), None)


def bench_model(model: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    runs = {s: tune(model, s, args, work) for s in STRATEGIES}
    graph = load_graph(f"zoo:{model}")
    nets = [compile_network(graph)]  # trials 0: default schedules
    for run in runs.values():
        for cp in run.checkpoints:
            nets.append(
                compile_network(graph, schedule_for=checkpoint_schedules(run.db, cp.records))
            )
    latencies, ort_ms, errors = time_networks(model, nets, args.threads, args.rounds)
    k = 1
    for run in runs.values():
        for cp in run.checkpoints:
            cp.latency_ms, k = latencies[k], k + 1
    rr, grad = runs["round-robin"], runs["gradient"]
    rr_final = rr.checkpoints[-1]
    measured = [(cp.trials, cp.latency_ms) for cp in grad.checkpoints]
    out = {
        f"{model}_gradient_latency_ms": grad.checkpoints[-1].latency_ms,
        f"{model}_round_robin_latency_ms": rr_final.latency_ms,
        f"{model}_gradient_trials_to_rr_final": trials_to_reach(measured, rr_final.latency_ms),
        f"{model}_rr_trials": rr_final.trials,
        f"{model}_onnxruntime_latency_ms": ort_ms,
        f"{model}_untuned_latency_ms": latencies[0],
        f"{model}_gradient_f_ms": ms(grad.checkpoints[-1].f_s),
        f"{model}_round_robin_f_ms": ms(rr_final.f_s),
        f"{model}_gradient_trials_to_rr_final_f": trials_to_reach(grad.f_history, rr_final.f_s)
        if rr_final.f_s
        else None,
        f"{model}_gradient_wall_s": grad.wall_s,
        f"{model}_round_robin_wall_s": rr.wall_s,
        f"{model}_max_rel_err": max(errors),
    }
    print_table(model, runs, latencies[0], ort_ms, out)
    return out


def ms(seconds: float | None) -> float | None:
    return seconds * 1e3 if seconds is not None and seconds < float("inf") else None


def print_table(model: str, runs: dict[str, Run], untuned_ms: float, ort_ms: float, out: dict):
    say(f"\n{model}: onnxruntime {ort_ms:.3f} ms, untuned {untuned_ms:.3f} ms")
    say(
        f"{'strategy':<12} | {'trials':>6} | {'f (ms)':>9} | {'measured (ms)':>13} | {'ort/ours':>8}"
    )
    for run in runs.values():
        for cp in run.checkpoints:
            f = f"{cp.f_s * 1e3:9.3f}" if cp.f_s and cp.f_s < float("inf") else f"{'-':>9}"
            say(f"{run.strategy:<12} | {cp.trials:>6} | {f} | {cp.latency_ms:>13.3f} | "
                f"{ort_ms / cp.latency_ms:>8.2f}")  # fmt: skip
    reach = out[f"{model}_gradient_trials_to_rr_final"]
    reach_f = out[f"{model}_gradient_trials_to_rr_final_f"]
    total = out[f"{model}_rr_trials"]
    say(f"gradient reached round-robin's final measured latency after "
        f"{reach if reach is not None else 'never'} of {total} trials"
        + (f" ({reach / total:.0%})" if reach is not None else "")
        + f"; its final f after {reach_f if reach_f is not None else 'never'} trials")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,bert_encoder")
    parser.add_argument("--per-task", type=int, default=20, help="trials per task per pass")
    parser.add_argument("--passes", type=int, default=4, help="round-robin passes of budget")
    parser.add_argument("--checkpoints-per-pass", type=int, default=1,
                        help="networks timed per pass-equivalent of trials")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="do not measure each task's default schedule in its first round")  # fmt: skip
    parser.add_argument("--policy", default="sketch", choices=("sketch", "random"))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", help="keep the records databases and decision logs here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    passive_thread_wait()
    figures: dict[str, object] = {
        "per_task": args.per_task,
        "passes": args.passes,
        "checkpoints_per_pass": args.checkpoints_per_pass,
        "threads": args.threads,
        "policy": args.policy,
        "baseline": args.baseline,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for model in args.models.split(","):
            figures.update(bench_model(model, args, work))
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
