"""Warm start across models (docs/search.md#warm-start): a network tuned after another one
on the same records database, its cost model started from the other's training data
(`DB.features.npz`), against a cold start.

1. The prior: `--prior` (zoo:resnet18) tuned for `--prior-trials` into WORK/prior.db
   (which writes WORK/prior.db.features.npz), in rounds of the default size.
2. `--model` (a ResNet-50 export, or zoo:mobilenet_v2) tuned for `--trials` trials,
   rounds of `--per-round`, by each of `--runs`, all with `sketchtune tune --no-check
   --retime 0`:
   - `cold`: a fresh database, `--no-warm-start` (a new model, as before);
   - `cold-same`: a copy of prior.db, `--no-warm-start` (tasks whose workload the
     prior measured resume from its records; the cost model starts cold);
   - `warm`: a copy of prior.db and its features file (both of the above).
   Reported per run: the estimated latency f (sum of weight x best latency) after
   every round, and the new trials each run needed to reach the `cold` run's final f
   (the target: <= 50 % of them). f is finite only once every task has a valid
   measurement, so the warm-up rounds (one per task) bound how early any run can get
   there: with 27 tasks and rounds of 8, 216 trials.
   With `--checkpoints N,N,...` each run's network after its first N new trials (each
   task's best record among them and the records it started from, the default schedule
   where there is none) is compiled, and all of them and onnxruntime are timed
   interleaved round by round (`--rounds`) at the end: the runs took place at different
   times on a shared machine, whose speed drifts, so only these side-by-side latencies
   compare across runs (`<run>_measured_ms`: [(N, ms)], `<run>_measured_trials_to_cold_final`).
3. Held-out pairwise accuracy on the new model's tasks: the `cold` run's measured
   programs of each task after its first round are the held-out set (pairs of
   different cost; accuracy averaged over the tasks with at least 8 of them). The
   models: `cold` (untrained: random scores), `first-round` (trained on every task's
   first-round programs, what a cold run knows after its warm-up), `resumed` (trained
   on the prior's programs of the new model's own workloads only: what a run on the
   same database without warm start learns from the records it resumes), `warm`
   (trained on the prior's features file) and `warm+first-round`; split into tasks
   whose workload the prior measured (`seen`) and the others (`new`).

4. With `--ops OP:SHAPE;...` (`--op-trials`, `--op-per-round`): each op tuned alone by
   `sketchtune tune-op --no-baseline` (the search alone: the default schedules of the
   convs run at 90 % of the machine's peak and would hide it) into a fresh database,
   cold (`--no-warm-start`) and warm (the prior's features file copied beside it): the
   best latency after each round, and the trials the warm run needed to reach the cold
   run's final best (`ops`).

Runs already finished in WORK are reused (`--work-dir`), so the figures can be
recomputed without tuning again.

    python tests/data/make_profile_models.py --out /tmp/nets resnet50   # or: --model zoo:mobilenet_v2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_warm_start.py \
        --model /tmp/nets/resnet50.onnx [--prior zoo:resnet18] [--prior-trials 576] \
        [--trials 600] [--per-round 8] [--runs cold,cold-same,warm] [--seed 0] \
        [--checkpoints 216,312,408,504,600] [--rounds 7] [--work-dir DIR] [--json]
    ... bench_warm_start.py --runs cold --ops "conv2d_nchwc:1,256,56,56,64,1,1,1,0" \
        --op-trials 128 --op-per-round 16 --work-dir DIR     # the tuned prior and cold run reused
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from output import human_output, print_json
from timing import interleaved_all

from compiler.cost_model import create as create_model
from compiler.cost_model import extract_features
from compiler.cost_model.training_file import read_training_file, training_path
from compiler.records import SQLiteStore, host_target_info
from compiler.runtime import set_num_threads
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.task import SearchTask
from compiler.task_scheduler import read_decision_log
from compiler.task_scheduler.resume import task_records
from models.compare import max_errors, ort_session, seeded_inputs
from models.load import load_graph, load_proto
from models.network import compile_network, default_schedule_for, passive_thread_wait
from models.partition import TuningTask, partition
from models.ranking_accuracy import pairwise_accuracy

RUNS = ("cold", "cold-same", "warm")
MIN_HELD_OUT = 8  # programs of a task after its first round, for its accuracy to count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="zoo:resnet18")
    parser.add_argument("--prior-trials", type=int, default=576)
    parser.add_argument("--model", default="zoo:mobilenet_v2")
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--per-round", type=int, default=8)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", default="",
                        help="new-trial counts whose networks are timed side by side")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--ops", default="", help="OP:SHAPE;... tuned alone, cold and warm")
    parser.add_argument("--op-trials", type=int, default=128)
    parser.add_argument("--op-per-round", type=int, default=16)
    parser.add_argument("--work-dir", default="/tmp/sketchtune-warm-start")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs = args.runs.split(",")
    if any(r not in RUNS for r in runs) or "cold" not in runs:
        parser.error(f"--runs: some of {', '.join(RUNS)}, with cold")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with human_output(args.json):
        figures = bench(args, runs, work)
        for key, value in figures.items():
            print(f"{key}: {json.dumps(value)}")
    if args.json:
        print_json(figures)
    return 0


def bench(args: argparse.Namespace, runs: list[str], work: Path) -> dict[str, object]:
    figures: dict[str, object] = {
        "prior": args.prior, "prior_trials": args.prior_trials, "model": args.model,
        "trials": args.trials, "per_round": args.per_round, "seed": args.seed,
    }  # fmt: skip
    prior_db = work / "prior.db"
    figures["prior_wall_s"] = tune(args.prior, prior_db, work / "prior", args.prior_trials,
                                   args, warm=True, per_round=None)  # fmt: skip
    curves: dict[str, list[tuple[int, float]]] = {}
    for kind in runs:
        db = work / f"{kind}.db"
        if kind != "cold" and not (work / kind / "run.json").exists():
            copy_db(prior_db, db)
            if kind == "warm":
                shutil.copy2(training_path(prior_db), training_path(db))
        figures[f"{kind}_wall_s"] = tune(args.model, db, work / kind, args.trials, args,
                                         warm=kind == "warm")  # fmt: skip
        figures[f"{kind}_start"] = warm_line(work / kind)
        curves[kind] = curve(work / kind / "decisions.jsonl")
        figures[f"{kind}_f_ms"] = curves[kind][-1][1] * 1e3 if curves[kind] else None
        figures[f"{kind}_curve"] = [(n, round(f * 1e3, 3)) for n, f in curves[kind]]
    target = curves["cold"][-1][1] if curves["cold"] else math.inf
    for kind in runs:
        reached = next((n for n, f in curves[kind] if f <= target), None)
        figures[f"{kind}_trials_to_cold_final"] = reached
        figures[f"{kind}_share_of_cold_trials"] = (
            round(reached / curves["cold"][-1][0], 3) if reached is not None else None
        )
    figures.update(accuracy(args.model, work / "cold.db", work / "cold" / "decisions.jsonl",
                            training_path(prior_db)))  # fmt: skip
    if args.checkpoints:
        points = sorted({int(n) for n in args.checkpoints.split(",")} | {args.trials})
        figures.update(measured(args.model, runs, work, points, args.rounds))
    if args.ops:
        figures["ops"] = [op_runs(spec, args, work) for spec in args.ops.split(";")]
    return figures


def op_runs(spec: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """One op tuned alone, cold and warm: best latency (ms) after each round."""
    op, shape = spec.split(":")
    out: dict[str, object] = {"op": op, "shape": shape}
    name = f"{op}_{shape.replace(',', 'x')}"
    curves = {}
    for kind in ("cold", "warm"):
        db = work / "ops" / f"{name}-{kind}.db"
        log = db.with_suffix(".log")
        if not log.exists() or "best latency" not in log.read_text():
            db.parent.mkdir(parents=True, exist_ok=True)
            for f in (db, training_path(db)):
                f.unlink(missing_ok=True)
            if kind == "warm":
                shutil.copy2(training_path(work / "prior.db"), training_path(db))
            cmd = [sys.executable, "-m", "flows.cli", "tune-op", op, "--shape", shape,
                   "--trials", str(args.op_trials), "--per-round", str(args.op_per_round),
                   "--records", str(db), "--seed", str(args.seed), "--no-baseline",
                   "--warm-start" if kind == "warm" else "--no-warm-start"]  # fmt: skip
            print(" ".join(cmd), file=sys.stderr, flush=True)
            with log.open("w") as f:
                subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=f, check=True)
        curves[kind] = op_curve(log.read_text())
        out[f"{kind}_curve"] = curves[kind]
        out[f"{kind}_best_ms"] = curves[kind][-1][1] if curves[kind] else None
    final = out["cold_best_ms"]
    out["warm_trials_to_cold_final"] = next((n for n, b in curves["warm"] if b <= final), None)
    out["cold_trials"] = curves["cold"][-1][0] if curves["cold"] else None
    return out


def op_curve(log: str) -> list[tuple[int, float]]:
    """(trials, best ms) from tune-op's round lines."""
    got = re.findall(r"round \d+: (\d+) trials, best ([0-9.]+) ms", log)
    return [(int(n), float(ms)) for n, ms in got]


def measured(model: str, runs: list[str], work: Path, points: list[int], rounds: int) -> dict:
    """Every run's network after N new trials for each N of `points`, timed side by side
    with each other and onnxruntime (interleaved, median per-round latency in ms)."""
    passive_thread_wait()
    set_num_threads(1)
    graph = load_graph(model)
    labels, nets = ["untuned"], [compile_network(graph)]
    for kind in runs:
        db = work / f"{kind}.db"
        start = count_records(work / "prior.db") if kind != "cold" else 0
        for n in points:
            labels.append(f"{kind}@{n}")
            nets.append(compile_network(graph, schedule_for=checkpoint_schedules(db, start + n)))
            print(f"compiled {labels[-1]}", file=sys.stderr, flush=True)
    session = ort_session(load_proto(model), 1)
    inputs = seeded_inputs(nets[0])
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(names, inputs)))
    errors = [max_errors(net.run(inputs), reference)[1] for net in nets]
    contenders = [net.run_bound for net in nets] + [lambda: session.run(names, inputs)]
    times = [statistics.median(t) * 1e3 for t in interleaved_all(contenders, rounds)]
    got = dict(zip(labels, times))
    out: dict[str, object] = {
        "untuned_ms": round(got["untuned"], 3), "onnxruntime_ms": round(times[-1], 3),
        "max_rel_err": max(errors), "timing_rounds": rounds,
    }  # fmt: skip
    for kind in runs:
        out[f"{kind}_measured_ms"] = [(n, round(got[f"{kind}@{n}"], 3)) for n in points]
    final = got[f"cold@{points[-1]}"]
    for kind in runs:
        out[f"{kind}_measured_trials_to_cold_final"] = next(
            (n for n in points if got[f"{kind}@{n}"] <= final), None
        )
    return out


def count_records(db: Path) -> int:
    with SQLiteStore(db, readonly=True) as store:
        return store.count()


def checkpoint_schedules(db: Path, first_n: int):
    """A `schedule_for`: each task's best valid record among the first `first_n` records
    of `db` (insertion order), the default schedule where there is none."""
    target = host_target_info().target
    best: dict[str, tuple[float, list[dict]]] = {}
    with SQLiteStore(db, readonly=True) as store:
        for k, rec in enumerate(store.records()):
            if k >= first_n:
                break
            valid = rec.target == target and rec.error_kind is None
            if valid and rec.mean_cost_s < best.get(rec.workload_key, (math.inf, []))[0]:
                best[rec.workload_key] = (rec.mean_cost_s, rec.steps)

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


def tune(
    model: str, db: Path, out: Path, trials: int, args, *, warm: bool, per_round: int | None = 0
) -> float | None:
    """`sketchtune tune` (its stderr in OUT/tune.log); wall seconds, None if reused.
    Rounds of `per_round` (0: --per-round; None: the default size)."""
    info = out / "run.json"
    if info.exists() and json.loads(info.read_text()).get("finished"):
        return None
    per_round = args.per_round if per_round == 0 else per_round
    cmd = [sys.executable, "-m", "flows.cli", "tune", model, "--trials", str(trials),
           "--records", str(db), "--out", str(out), "--seed", str(args.seed), "--no-check",
           "--retime", "0", "--warm-start" if warm else "--no-warm-start", "--json"]  # fmt: skip
    if per_round is not None:
        cmd += ["--per-round", str(per_round)]
    out.mkdir(parents=True, exist_ok=True)
    print(" ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with (out / "tune.log").open("w") as log:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=log, check=True)
    return round(time.perf_counter() - t0, 1)


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a records database (its WAL included)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def warm_line(out: Path) -> str | None:
    log = out / "tune.log"
    if not log.exists():
        return None
    return next((ln for ln in log.read_text().splitlines() if ln.startswith("warm start")), None)


def curve(log_path: Path) -> list[tuple[int, float]]:
    """(new trials so far, f) after each round of a run where f is finite."""
    out, n = [], 0
    for line in read_decision_log(log_path):
        n += int(line["trials"])
        if line.get("f_s") is not None:
            out.append((n, float(line["f_s"])))
    return out


def accuracy(model: str, db: Path, log_path: Path, prior_file: Path) -> dict[str, object]:
    """Held-out pairwise accuracy of the four models on the cold run's programs."""
    target = host_target_info().target
    part = partition(load_graph(model))
    first_n: dict[str, int] = {}
    for line in read_decision_log(log_path):
        first_n.setdefault(line["workload_key"], int(line["trials"]))
    prior = read_training_file(prior_file)
    seen = {key for key, _ in prior.of_target(target)} if prior else set()
    tasks = []
    with SQLiteStore(db, readonly=True) as store:
        for t in part.tasks:
            recs = task_records(SearchTask(f"t{t.id}", t.dag, t.weight), store, target)
            n1 = first_n.get(t.workload_key, 0)
            held = [(s, c) for s, c in zip(recs.states[n1:], recs.costs_s[n1:]) if c is not None]
            tasks.append((t, recs.states[:n1], recs.costs_s[:n1], held))
    first_states = [s for _, states, _, _ in tasks for s in states]
    first_costs = [math.inf if c is None else c for _, _, costs, _ in tasks for c in costs]
    models = {}
    t0 = time.perf_counter()
    models["cold"] = create_model("xgb", seed=0)
    models["first-round"] = create_model("xgb", seed=0)
    models["first-round"].update(first_states, first_costs)
    fit_s = {}
    own_keys = {t.workload_key for t in part.tasks}
    for name in ("resumed", "warm", "warm+first-round"):
        m = create_model("xgb", seed=0)
        t = time.perf_counter()
        if prior is not None:
            groups = prior.of_target(target)
            if name == "resumed":
                groups = ((k, g) for k, g in groups if k in own_keys)
            m.warm_start((k, g.ids, g.costs_s, g.rows) for k, g in groups)
        fit_s[name] = round(time.perf_counter() - t, 2)
        if name == "warm+first-round":
            m.update(first_states, first_costs)
            m.fit()
        models[name] = m
    figures: dict[str, object] = {
        "prior_programs": sum(len(g) for _, g in prior.of_target(target)) if prior else 0,
        "prior_workloads": len(seen), "warm_fit_s": fit_s["warm"],
        "models_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    per_task: dict[str, list[tuple[str, float]]] = {name: [] for name in models}
    for t, _, _, held in tasks:
        if len(held) < MIN_HELD_OUT:
            continue
        states, costs = [s for s, _ in held], [c for _, c in held]
        extract_features(states)
        group = "seen" if t.workload_key in seen else "new"
        for name, m in models.items():
            acc = pairwise_accuracy(m.predict(states), costs)
            if acc is not None:
                per_task[name].append((group, acc))
    for name, got in per_task.items():
        for group in ("all", "seen", "new"):
            accs = [a for g, a in got if group == "all" or g == group]
            key = f"accuracy_{name}_{group}"
            figures[key] = round(statistics.mean(accs), 3) if accs else None
            figures[f"tasks_{group}"] = len(accs)
    figures["first_round_programs"] = len(first_states)
    figures["held_out_programs"] = sum(len(h) for *_, h in tasks if len(h) >= MIN_HELD_OUT)
    return figures


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    np.seterr(all="ignore")
    sys.exit(main())
