"""Task scheduler: `gradient` against `round-robin` on whole networks, same budget.

For zoo resnet18 and the zoo bert_encoder, once per seed of `--seeds`: the
warm-up (one round per task, which both strategies start with by definition)
is run once, and each strategy resumes from a copy of its records and
decision log with a fresh cost model, so the two differ only in what they do
after it; the budget is the same (`--per-task` trials per task per round-robin
pass, `--passes` passes, warm-up included; one round = `--per-task` trials;
each task's default schedule is measured in its first round unless
`--no-baseline`; per-task early stopping after `--early-stopping` trials
without a 1 % gain, for both). After every pass-equivalent the
estimated latency f is noted and the records so far are kept as a checkpoint.
At the end every checkpoint's network (each task's best record among the
first N, the default schedule where there is none) is compiled and timed
interleaved round by round with onnxruntime (same thread count, all graph
optimizations), so all measured latencies of a model come from one window of
this drifting machine. Reported per seed: f and measured latency against
trials for both strategies, onnxruntime's latency, and how many trials
gradient needed to reach round-robin's final measured latency and final f
(target: <= 60 % of them); the JSON's top-level figures are medians over the
seeds ("never" counts as more than any number), the per-seed ones are under
`<model>_seeds`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_scheduler.py \
        [--models resnet18,bert_encoder] [--per-task 20] [--passes 4] [--seeds 0,1,2] [--json]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from output import human_output, print_json
from timing import interleaved_all

from compiler.cost_model import create as create_model
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.policies import create as create_policy
from compiler.records import SQLiteStore, host_target_info
from compiler.runtime import set_num_threads
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler, read_decision_log
from compiler.task_scheduler.gradient import FORWARD_KINDS
from models.compare import max_errors, ort_session, seeded_inputs
from models.load import load_graph, load_proto
from models.network import Network, compile_network, default_schedule_for, passive_thread_wait
from models.partition import TuningTask, partition

STRATEGIES = ("round-robin", "gradient")


def model_spec(model: str) -> str:
    """What load_graph takes: a zoo name (resnet18) or a path to an .onnx file."""
    return model if model.endswith(".onnx") else f"zoo:{model}"


def model_name(model: str) -> str:
    """A zoo name as it is; an .onnx path by its file's stem (for file names)."""
    return Path(model).stem if model.endswith(".onnx") else model


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Checkpoint:
    trials: int
    f_s: float | None
    records: int  # the first `records` rows of `db` make this checkpoint
    db: Path
    latency_ms: float = float("nan")


@dataclass
class Run:
    strategy: str
    db: Path
    checkpoints: list[Checkpoint] = field(default_factory=list)
    f_history: list[tuple[int, float]] = field(default_factory=list)  # (total trials, f_s)
    wall_s: float = 0.0


def new_scheduler(model: str, strategy: str, seed: int, args: argparse.Namespace, log: Path):
    """A fresh scheduler with fresh policies and one fresh cost model for `model`."""
    tasks = partition(load_graph(model_spec(model))).tasks
    search_tasks = [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in tasks]
    cost_model = create_model("xgb", seed=seed)  # shared by every task of the run
    policies = [
        create_policy(args.policy, t.dag, model=cost_model, seed=seed + k)
        for k, t in enumerate(search_tasks)
    ]
    baselines = [default_schedule_for(t) for t in tasks] if args.baseline else None
    return TaskScheduler(search_tasks, policies, strategy=strategy, per_round=args.per_task,
                         seed=seed, log_path=log, baselines=baselines,
                         early_stopping=args.early_stopping or None, alpha=args.alpha,
                         short_history=args.short_history, forward=args.forward)  # fmt: skip


def measurer_for(store: SQLiteStore, threads: int):
    builder = create_builder("local")
    runner = create_runner("local", settings=MeasureSettings(threads=threads), devices="default")
    return builder, runner, Measurer(builder=builder, runner=runner, store=store)


def warm_up(model: str, seed: int, args: argparse.Namespace, work: Path) -> Run:
    """One round per task, in task order: the start both strategies share (copied
    from `--warmup-from` when given, so runs with other options start alike)."""
    run = Run("warm-up", work / f"{model_name(model)}_s{seed}_warmup.db")
    if run.db.exists():
        raise SystemExit(f"bench_scheduler: {run.db} exists; each run needs a fresh --work-dir")
    log = run.db.with_suffix(".jsonl")
    if args.warmup_from:
        shutil.copyfile(Path(args.warmup_from) / run.db.name, run.db)
        shutil.copyfile(Path(args.warmup_from) / log.name, log)
    sched = new_scheduler(model, "round-robin", seed, args, log)
    store = SQLiteStore(run.db)
    builder, runner, measurer = measurer_for(store, args.threads)
    start = time.perf_counter()
    with builder, runner:
        if args.warmup_from:
            sched.resume(store, measurer.target.target)
        else:
            sched.tune(measurer, 10**9, on_round=progress(model, "warm-up"),
                       max_rounds=len(sched.tasks))  # fmt: skip
    run.wall_s = time.perf_counter() - start
    run.checkpoints.append(
        Checkpoint(sched.total_trials, sched.objective_value, store.count(), run.db)
    )
    store.close()
    say(f"[{model} seed {seed}] warm-up: {sched.total_trials} trials, "
        f"f {sched.objective_value * 1e3:.3f} ms, {run.wall_s:.0f} s")  # fmt: skip
    return run


def tune(model: str, strategy: str, seed: int, args: argparse.Namespace, work: Path,
         start_from: Run) -> Run:  # fmt: skip
    """Resume a copy of the warm-up under `strategy` and spend the rest of the budget,
    with checkpoints along the way."""
    run = Run(strategy, work / f"{model_name(model)}_s{seed}_{strategy}.db")
    log = run.db.with_suffix(".jsonl")
    shutil.copyfile(start_from.db, run.db)
    shutil.copyfile(start_from.db.with_suffix(".jsonl"), log)
    sched = new_scheduler(model, strategy, seed, args, log)
    budget = args.passes * args.per_task * len(sched.tasks)
    step_trials = args.per_task * len(sched.tasks) // args.checkpoints_per_pass
    store = SQLiteStore(run.db)
    builder, runner, measurer = measurer_for(store, args.threads)
    start = time.perf_counter()
    with builder, runner:
        sched.resume(store, measurer.target.target)
        run.checkpoints.append(start_from.checkpoints[0])
        while sched.total_trials < budget and not all(st.done for st in sched.task_states):
            want = min(step_trials, budget - sched.total_trials)
            sched.tune(measurer, want, on_round=progress(model, strategy))
            f = sched.objective_value
            run.checkpoints.append(Checkpoint(sched.total_trials, f, store.count(), run.db))
            say(f"[{model} seed {seed} {strategy}] {sched.total_trials}/{budget} trials, "
                f"f {f * 1e3:.3f} ms, {time.perf_counter() - start:.0f} s")  # fmt: skip
    run.wall_s = start_from.wall_s + time.perf_counter() - start
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
    session = ort_session(load_proto(model_spec(model)), threads)
    inputs = seeded_inputs(nets[0])
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(names, inputs)))
    errors = [max_errors(net.run(inputs), reference)[1] for net in nets]
    contenders = [net.run_bound for net in nets] + [lambda: session.run(names, inputs)]
    times = interleaved_all(contenders, rounds)
    medians = [statistics.median(t) * 1e3 for t in times]
    return medians[:-1], medians[-1], errors


def trials_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    return next((trials for trials, value in points if value <= target), None)


def bench_seed(model: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    start = warm_up(model, seed, args, work)
    runs = {s: tune(model, s, seed, args, work, start) for s in STRATEGIES}
    graph = load_graph(model_spec(model))
    nets = [compile_network(graph)]  # trials 0: default schedules
    cps = [start.checkpoints[0]] + [cp for run in runs.values() for cp in run.checkpoints[1:]]
    for cp in cps:
        nets.append(compile_network(graph, schedule_for=checkpoint_schedules(cp.db, cp.records)))
    latencies, ort_ms, errors = time_networks(model, nets, args.threads, args.rounds)
    for cp, latency in zip(cps, latencies[1:]):
        cp.latency_ms = latency
    rr, grad = runs["round-robin"], runs["gradient"]
    rr_final = rr.checkpoints[-1]
    measured = [(cp.trials, cp.latency_ms) for cp in grad.checkpoints]
    out = {
        "seed": seed,
        "gradient_latency_ms": grad.checkpoints[-1].latency_ms,
        "round_robin_latency_ms": rr_final.latency_ms,
        "gradient_trials_to_rr_final": trials_to_reach(measured, rr_final.latency_ms),
        "rr_trials": rr_final.trials,
        "onnxruntime_latency_ms": ort_ms,
        "untuned_latency_ms": latencies[0],
        "warmup_trials": start.checkpoints[0].trials,
        "warmup_latency_ms": start.checkpoints[0].latency_ms,
        "gradient_f_ms": ms(grad.checkpoints[-1].f_s),
        "round_robin_f_ms": ms(rr_final.f_s),
        "gradient_trials_to_rr_final_f": trials_to_reach(grad.f_history, rr_final.f_s)
        if rr_final.f_s
        else None,
        "gradient_wall_s": grad.wall_s,
        "round_robin_wall_s": rr.wall_s,
        "max_rel_err": max(errors),
        "f_curves": {s: [(cp.trials, ms(cp.f_s)) for cp in r.checkpoints] for s, r in runs.items()},
        "measured_curves": {
            s: [(cp.trials, cp.latency_ms) for cp in r.checkpoints] for s, r in runs.items()
        },
    }
    print_table(f"{model} seed {seed}", runs, latencies[0], ort_ms, out)
    return out


def bench_model(model: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    seeds = [bench_seed(model, seed, args, work) for seed in args.seeds]
    out: dict[str, object] = {}
    for key in ("gradient_latency_ms", "round_robin_latency_ms", "onnxruntime_latency_ms",
                "untuned_latency_ms", "gradient_f_ms", "round_robin_f_ms", "max_rel_err",
                "gradient_trials_to_rr_final", "gradient_trials_to_rr_final_f"):  # fmt: skip
        out[f"{model}_{key}"] = median_or_never([s[key] for s in seeds])
    out[f"{model}_rr_trials"] = seeds[0]["rr_trials"]
    out[f"{model}_seeds"] = seeds
    reach, reach_f = (out[f"{model}_gradient_trials_to_rr_final{k}"] for k in ("", "_f"))
    after, after_f = ("never" if r is None else r for r in (reach, reach_f))
    print(f"\n{model}, median of {len(seeds)} seed(s): gradient reached round-robin's final "
          f"measured latency after {after} and its final f after {after_f} of "
          f"{out[f'{model}_rr_trials']} trials")  # fmt: skip
    return out


def median_or_never(values: list) -> float | None:
    """The median, with None ("never reached") counted as larger than any number."""
    ranked = sorted(values, key=lambda v: math.inf if v is None else v)
    if len(ranked) % 2:
        return ranked[len(ranked) // 2]
    lo, hi = ranked[len(ranked) // 2 - 1], ranked[len(ranked) // 2]
    return None if lo is None or hi is None else (lo + hi) / 2


def ms(seconds: float | None) -> float | None:
    return seconds * 1e3 if seconds is not None and seconds < float("inf") else None


def print_table(model: str, runs: dict[str, Run], untuned_ms: float, ort_ms: float, out: dict):
    print(f"\n{model}: onnxruntime {ort_ms:.3f} ms, untuned {untuned_ms:.3f} ms")
    print(
        f"{'strategy':<12} | {'trials':>6} | {'f (ms)':>9} | {'measured (ms)':>13} | {'ort/ours':>8}"
    )
    for run in runs.values():
        for cp in run.checkpoints:
            f = f"{cp.f_s * 1e3:9.3f}" if cp.f_s and cp.f_s < float("inf") else f"{'-':>9}"
            print(f"{run.strategy:<12} | {cp.trials:>6} | {f} | {cp.latency_ms:>13.3f} | "
                  f"{ort_ms / cp.latency_ms:>8.2f}")  # fmt: skip
    reach = out["gradient_trials_to_rr_final"]
    reach_f = out["gradient_trials_to_rr_final_f"]
    total = out["rr_trials"]
    after = "never" if reach is None else reach
    share = "" if reach is None else f" ({reach / total:.0%})"
    after_f = "never" if reach_f is None else reach_f
    print(f"gradient reached round-robin's final measured latency after {after} of {total} "
          f"trials{share}; its final f after {after_f} trials")  # fmt: skip


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
    parser.add_argument("--alpha", type=float, default=0.2, help="gradient: weight of backward")
    parser.add_argument("--short-history", action="store_true",
                        help="gradient: backward term over the rounds there are (< W)")  # fmt: skip
    parser.add_argument("--forward", default="ansor", choices=FORWARD_KINDS,
                        help="gradient: the forward estimate (task_scheduler/gradient.py)")  # fmt: skip
    parser.add_argument("--seeds", default="0", help="comma-separated; one whole comparison each")
    parser.add_argument("--early-stopping", type=int, default=None,
                        help="per-task early stopping in trials (default 3 x --per-task; 0: off)")  # fmt: skip
    parser.add_argument("--warmup-from",
                        help="a --work-dir of an earlier run: reuse its warm-ups (same seeds)")  # fmt: skip
    parser.add_argument("--work-dir", help="keep the records databases and decision logs here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.seeds = [int(x) for x in args.seeds.split(",")]
    if args.early_stopping is None:
        args.early_stopping = 3 * args.per_task
    with human_output(args.json):
        figures = bench_all(args)
    if args.json:
        print_json(figures)
    return 0


def bench_all(args: argparse.Namespace) -> dict[str, object]:
    """Both strategies on every model and seed; prints the tables."""
    passive_thread_wait()
    figures: dict[str, object] = {
        "per_task": args.per_task,
        "passes": args.passes,
        "checkpoints_per_pass": args.checkpoints_per_pass,
        "threads": args.threads,
        "policy": args.policy,
        "baseline": args.baseline,
        "seeds": args.seeds,
        "alpha": args.alpha,
        "short_history": args.short_history,
        "forward": args.forward,
        "early_stopping": args.early_stopping,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for model in args.models.split(","):
            figures.update(bench_model(model, args, work))
    for key, value in figures.items():
        print(f"{key}: {value}")
    return figures


if __name__ == "__main__":
    sys.exit(main())
