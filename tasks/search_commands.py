"""The search commands behind the CLI: `tune-op` and `sketches` (plain functions).

Each returns its `--json` summary and writes human output to stderr. Bad input
raises `SearchInputError` (the CLI exits with code 2).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from compiler.autotvm.tuners import TUNERS
from compiler.cost_model import create as create_model
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.ops.errors import OpError
from compiler.ops.workloads import WORKLOADS, op_workload
from compiler.records import create as create_store
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError
from compiler.search.policy import policy_for_task
from compiler.search.sketch import generate_sketches
from compiler.search.tune import RoundLog, TuneResult, tune_task
from compiler.task import SearchTask
from compiler.te.tensor import TEError

POLICIES = ("sketch", "template", "random")


class SearchInputError(ValueError):
    """A bad option or argument of a search command."""


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def op_task(op: str, shape: str) -> SearchTask:
    try:
        dag = op_workload(op, shape)
    except (OpError, TEError) as err:
        raise SearchInputError(str(err)) from None
    return SearchTask(f"{op}_{shape.replace(',', 'x')}", dag)


def cost_model(kind: str = "xgb"):
    """The cost model shared by every task of a run (XGBoost by default)."""
    return create_model(kind)


def check_options(
    *, trials: int, per_round: int, tuner: str, policy: str = "sketch", min_trials: int = 0
) -> None:
    """The search options shared by tune-op and compare-spaces (SearchInputError if bad)."""
    if trials < min_trials:
        raise SearchInputError(f"--trials must be >= {min_trials}, got {trials}")
    if per_round < 1:
        raise SearchInputError(f"--per-round must be >= 1, got {per_round}")
    if policy not in POLICIES:
        raise SearchInputError(f"--policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if tuner not in TUNERS:
        raise SearchInputError(f"--tuner must be one of {', '.join(TUNERS)}, got {tuner!r}")


def tune_op_command(
    op: str,
    shape: str,
    *,
    trials: int,
    records: str,
    policy: str = "sketch",
    tuner: str = "xgb",
    threads: int = 0,
    devices: str = "default",
    seed: int = 0,
    per_round: int = 64,
    early_stopping: int | None = None,
    baseline: bool = True,
    search_ahead: bool = True,
) -> dict[str, object]:
    """Tune one op into the records database; the best latency and schedule.
    With `baseline`, the op's default schedule is measured first (as whole-network
    runs do), so the result is never slower than the untuned op; a template policy
    starts from its template's fallback config instead. With `search_ahead`, the
    next round is searched while this one is timed when that leaves a core idle."""
    check_options(trials=trials, per_round=per_round, tuner=tuner, policy=policy)
    task = op_task(op, shape)
    Path(records).parent.mkdir(parents=True, exist_ok=True)
    store = create_store("sqlite", path=records)
    settings = MeasureSettings(threads=threads)
    pol = search_policy(policy, task, tuner=tuner, seed=seed, store=store)
    with (
        create_builder("local") as builder,
        create_runner("local", settings=settings, devices=devices) as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        result = tune_task(task, pol, measurer, trials=trials, per_round=per_round,
                           early_stopping=early_stopping, on_round=_progress(task),
                           baseline=default_baseline(task) if baseline and policy != "template"
                           else None, ahead=None if search_ahead else False)  # fmt: skip
    store.close()
    return _summary(op, shape, result, records)


def default_baseline(task: SearchTask) -> State | None:
    """The op's default (hand-written) schedule, None if there is none for it."""
    try:
        return default_schedule(task.dag)
    except ScheduleError:
        return None


def search_policy(kind: str, task: SearchTask, *, tuner: str, seed: int, store=None):
    """The task's policy (`template` falls back to `sketch` for an op without one,
    saying so on stderr); a template policy learns from the store's records of other
    workloads of its template (transfer learning)."""
    pol = policy_for_task(
        kind, task.dag, model=cost_model("xgb"), tuner=tuner, seed=seed, warn=_say, name=task.name
    )
    if store is not None and hasattr(pol, "transfer_from"):
        used = pol.transfer_from(store.records())
        if used:
            _say(f"[{task.name}] transfer learning from {used} records of other workloads")
    return pol


def _progress(task: SearchTask):
    def show(log: RoundLog, result: TuneResult) -> None:
        gflops = task.flop_count / log.best_cost_s / 1e9 if log.best_cost_s < float("inf") else 0
        _say(
            f"[{task.name}] round {log.round}: {result.trials} trials, best "
            f"{log.best_cost_s * 1e3:.4f} ms ({gflops:.1f} GFLOP/s), search {log.search_s:.1f} s, "
            f"build {log.build_s:.1f} s, measure {log.measure_s:.1f} s, errors {log.errors}"
        )

    return show


def _summary(op: str, shape: str, result: TuneResult, records: str) -> dict[str, object]:
    best = result.best_cost_s if result.best_state is not None else None
    if result.best_state is not None:
        _say(f"best schedule of {result.task.name}:\n{result.best_state}")
        _say(f"best latency {best * 1e3:.4f} ms, {result.gflops:.1f} GFLOP/s")  # type: ignore[operator]
    else:
        _say("no valid candidate was measured")
    return {
        "op": op,
        "shape": [int(v) for v in shape.split(",")],
        "trials": result.trials,
        "resumed_records": result.resumed,
        "best_latency_s": best,
        "gflops": result.gflops,
        "records": str(records),
        "stop_reason": result.stop_reason,
    }


def sketches_command(target: str, shape: str | None = None) -> dict[str, object]:
    """The sketches of an op (`--shape`) or of every task of a model, as loop nests."""
    tasks = [op_task(target, shape)] if shape is not None else _model_tasks(target)
    out = []
    cores = os.cpu_count() or 1
    for task in tasks:
        sketches = generate_sketches(task.dag, cores=cores)
        _say(f"== {task.name}: {len(sketches)} sketches")
        for i, s in enumerate(sketches):
            _say(f"-- sketch {i}\n{s}")
        out.append({"task": task.name, "sketches": len(sketches)})
    return {"target": target, "tasks": out}


def _model_tasks(model: str) -> list[SearchTask]:
    if model in WORKLOADS:
        raise SearchInputError(f"{model} needs --shape ({WORKLOADS[model][2]})")
    from tasks.model_commands import ModelError, load_graph, parse_input_shapes, partition

    try:
        part = partition(load_graph(model, parse_input_shapes([])))
    except ModelError as err:
        raise SearchInputError(str(err)) from None
    return [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in part.tasks]
