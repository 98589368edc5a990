"""The search commands behind the CLI: `tune-op` and `sketches` (plain functions).

Each returns its `--json` summary and writes human output to stderr. Bad input
raises an OptionError (tasks/options.py; the CLI exits with code 2).
`tune-op` is the tuning loop (compiler/task_scheduler/loop.py) on a task
scheduler of one task, with builder and runner processes on this machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from compiler.cost_model import create as create_model
from compiler.lower.printer import format_state
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.ops.errors import OpError
from compiler.ops.workloads import WORKLOADS, op_workload
from compiler.policies import policy_for_task
from compiler.records import create as create_store
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError
from compiler.search.policy import SearchPolicy
from compiler.search.sketch import generate_sketches
from compiler.task import SearchTask
from compiler.task_scheduler import SchedulerResult, TaskScheduler
from compiler.te.tensor import TEError
from tasks.options import OptionError, OpTuneOptions


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def op_task(op: str, shape: str) -> SearchTask:
    """The task of `op` at `shape`; an OptionError for a bad shape or one whose inputs or
    outputs are over the size limit (compiler/settings.py), before anything starts."""
    import numpy as np

    from compiler.errors import UserError
    from compiler.settings import check_tensor_size

    try:
        dag = op_workload(op, shape)
    except (OpError, TEError) as err:
        raise OptionError(str(err)) from None
    for kind, tensors in (("input", dag.placeholders), ("output", dag.outputs)):
        for t in tensors:
            try:
                check_tensor_size(f"{kind} {t.name!r}", t.shape, np.dtype(t.dtype).itemsize)
            except UserError as err:
                raise OptionError(f"{op} --shape {shape}: {err}") from None
    return SearchTask(f"{op}_{shape.replace(',', 'x')}", dag)


def cost_model(kind: str = "xgb"):
    """The cost model shared by every task of a run (XGBoost by default)."""
    return create_model(kind)


def tune_op_command(o: OpTuneOptions) -> dict[str, object]:
    """Tune one op into the records database; the best latency and schedule.
    With `baseline`, the op's default schedule is measured first (as whole-network
    runs do), so the result is never slower than the untuned op; a template policy
    starts from its template's fallback config instead. With `search_ahead`, the
    next round is searched while this one is timed when that leaves a core idle."""
    task = op_task(o.op, o.shape)
    o.check_records()
    store = create_store("sqlite", path=o.records)
    policy = search_policy(o.policy, task, tuner=o.tuner, seed=o.seed, store=store,
                           warm_start=o.warm_start, threads=o.threads)  # fmt: skip
    baseline = default_baseline(task) if o.baseline and o.policy != "template" else None
    sched = TaskScheduler([task], [policy], per_round=o.per_round,
                          early_stopping=o.early_stopping, seed=o.seed,
                          baselines=[baseline])  # fmt: skip
    settings = MeasureSettings(threads=o.threads)
    with (
        create_builder("local") as builder,
        create_runner("local", settings=settings, devices=o.devices) as runner,
    ):
        measurer = Measurer(builder=builder, runner=runner, store=store)
        result = sched.tune(
            measurer, o.trials, _progress(task), ahead=None if o.search_ahead else False,
            time_budget_s=None if o.minutes is None else o.minutes * 60,
        )  # fmt: skip
    warm = getattr(getattr(policy, "model", None), "warm", None)
    if warm is not None:
        _say(warm.save(policy.model))  # the cost model's training data, for the next run
    store.close()
    return _summary(o, policy, result)


def default_baseline(task: SearchTask) -> State | None:
    """The op's default (hand-written) schedule, None if there is none for it."""
    try:
        return default_schedule(task.dag)
    except ScheduleError:
        return None


def search_policy(
    kind: str, task: SearchTask, *, tuner: str, seed: int, store=None, warm_start: bool = False,
    threads: int = 1,
):  # fmt: skip
    """The task's policy (`template` falls back to `sketch` for an op without one,
    saying so on stderr); a template policy learns from the store's records of other
    workloads of its template (transfer learning). With `warm_start` (and a store), the
    sketch policy's cost model starts from the training data beside the store's
    database (every workload measured on this CPU at `threads` threads;
    `model.warm.save` adds to it)."""
    model = cost_model("xgb")
    pol = policy_for_task(
        kind, task.dag, model=model, tuner=tuner, seed=seed, warn=_say, name=task.name,
        cores=threads,
    )  # fmt: skip
    if warm_start and store is not None and getattr(pol, "model", None) is model:
        from compiler.cost_model.warm_start import attach
        from compiler.records import host_target_info

        _say(attach(model, store.path, host_target_info(threads).target).start_line())
    if store is not None and hasattr(pol, "transfer_from"):
        used = pol.transfer_from(store.records())
        if used:
            _say(f"[{task.name}] transfer learning from {used} records of other workloads")
    return pol


def _progress(task: SearchTask) -> Callable[[dict], None]:
    trials = 0

    def show(line: dict) -> None:
        nonlocal trials
        trials += line["trials"]
        best = line["task_best_s"]
        gflops = task.flop_count / best / 1e9 if best else 0.0
        best_text = f"{best * 1e3:.4f} ms ({gflops:.1f} GFLOP/s)" if best else "-"
        _say(
            f"[{task.name}] round {line['round']}: {trials} trials, best {best_text}, "
            f"search {line['search_s']:.1f} s, build {line['build_s']:.1f} s, "
            f"measure {line['measure_s']:.1f} s, errors {line['errors']}"
        )

    return show


def _summary(o: OpTuneOptions, policy: SearchPolicy, result: SchedulerResult) -> dict[str, object]:
    got = policy.best(1)
    task_flops = policy.dag.flop_count
    best = got[0][0] if got else None
    if got:
        _say(f"best schedule of {o.op} {o.shape}:\n{got[0][1]}")
        _say(f"best latency {best * 1e3:.4f} ms, {task_flops / best / 1e9:.1f} GFLOP/s")
    else:
        _say("no valid candidate was measured")
    return {
        "op": o.op,
        "shape": [int(v) for v in o.shape.split(",")],
        "trials": result.trials,
        "resumed_records": result.resumed,
        "best_latency_s": best,
        "gflops": task_flops / best / 1e9 if best else 0.0,
        "records": str(o.records),
        "stop_reason": result.task_states[0].stop_reason or result.stop_reason,
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
            _say(f"-- sketch {i}\n{format_state(s)}")
        out.append({"task": task.name, "sketches": len(sketches)})
    return {"target": target, "tasks": out}


def _model_tasks(model: str) -> list[SearchTask]:
    if model in WORKLOADS:
        raise OptionError(f"{model} needs --shape ({WORKLOADS[model][2]})")
    from tasks.model_commands import ModelError, load_graph, parse_input_shapes, partition

    try:
        part = partition(load_graph(model, parse_input_shapes([])))
    except ModelError as err:
        raise OptionError(str(err)) from None
    return [SearchTask(f"task{t.id}_{'+'.join(t.ops)}", t.dag, t.weight) for t in part.tasks]
