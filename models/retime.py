"""Keep only what is really faster: before a network is compiled, each task's best few
records are re-timed side by side with its default schedule, and the network takes
the winner.

While tuning, candidates are timed beside the builds and the search on the other
core, and a task's best record is the fastest of hundreds of noisy timings; on a
loaded machine a tuned task measured up to 2.6x slower in the network than its own
default schedule. Here the finalists (the `finalists` fastest distinct records and
the default schedule) are built and timed interleaved in one runner process, with
nothing of ours beside them (compiler/measure/side_by_side.py), and every timing is
written to the records database as a record whose settings carry
`"retimed": <start time of the re-timing>`; `SQLiteStore.retimed` then gives the
winner, which `models.tuned.RecordSchedules` prefers over the best tuning record
until the workload is tuned again.

    >>> results = retime_tasks(partition.tasks, store, finalists=2)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compiler.measure import (
    LocalBuilder,
    LocalRunner,
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    RunRequest,
    to_record,
)
from compiler.measure.worker import WorkerCrash, WorkerTimeout
from compiler.records import SQLiteStore, TargetInfo, host_target_info
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.task import SearchTask
from models.network import default_schedule_for
from models.partition import TuningTask

ROUNDS = 7


@dataclass(frozen=True)
class Retimed:
    """One task's re-timing: seconds per call (median over rounds) of its default
    schedule and of the winner, and whether the winner is a tuned record."""

    task_id: int
    workload_key: str
    contenders: int
    default_s: float
    winner_s: float
    tuned_wins: bool


def retime_tasks(
    tasks: Sequence[TuningTask],
    store: SQLiteStore,
    *,
    finalists: int = 2,
    rounds: int = ROUNDS,
    threads: int = 1,
    say: Callable[[str], None] = lambda line: None,
) -> list[Retimed]:
    """Re-time each task that has valid records (see the module docstring)."""
    target, session = host_target_info(threads), time.time()
    settings = MeasureSettings(threads=threads)
    out = []
    with LocalBuilder() as builder, LocalRunner(settings=settings) as runner:
        for task in tasks:
            got = _retime(task, store, target, builder, runner, finalists, rounds, session)
            if got is not None:
                out.append(got)
                say(_describe(got))
    return out


def finalist_states(task: TuningTask, store: SQLiteStore, target: str, k: int) -> list[State]:
    """The `k` fastest distinct valid records of `task` that still replay, fastest first."""
    seen, out = set(), []
    records = sorted(
        (r for r in store.records(task.workload_key)
         if r.target == target and math.isfinite(r.mean_cost_s)),
        key=lambda r: r.mean_cost_s,
    )  # fmt: skip
    for rec in records:
        if rec.steps_hash in seen:
            continue
        seen.add(rec.steps_hash)
        try:
            state = State.replay(task.dag, steps_from_json(rec.steps))
        except (ScheduleError, KeyError, TypeError, ValueError):
            continue
        if state.is_complete:
            out.append(state)
        if len(out) == k:
            break
    return out


def _retime(
    task: TuningTask, store: SQLiteStore, target: TargetInfo, builder: LocalBuilder,
    runner: LocalRunner, finalists: int, rounds: int, session: float,
) -> Retimed | None:  # fmt: skip
    default = default_schedule_for(task)
    tuned = [s for s in finalist_states(task, store, target.target, finalists)
             if s.steps != default.steps]  # fmt: skip
    if not tuned:
        return None
    search_task = SearchTask(f"task{task.id}", task.dag, task.weight)
    inputs = [MeasureInput(search_task, s) for s in [default, *tuned]]
    built = [(i, b) for i, b in zip(inputs, builder.build(inputs)) if b.artifact is not None]
    if len(built) < 2 or built[0][0] is not inputs[0]:
        return None  # nothing to compare (a finalist or the default no longer builds)
    n_inputs = len(task.dag.placeholders)
    requests = [RunRequest(b.artifact, None, n_inputs, task.workload_key) for _, b in built]
    try:
        times = runner.side_by_side(requests, rounds)
    except (WorkerCrash, WorkerTimeout):
        return None  # a finalist crashed or hung: the task keeps what it had
    meta = {"retimed": session, "rounds": rounds, "threads": runner.settings.threads}
    store.add(to_record(i, MeasureResult(tuple(t), settings=meta), target)
              for (i, _), t in zip(built, times))  # fmt: skip
    medians = [statistics.median(t) for t in times]
    means = [statistics.fmean(t) for t in times]
    win = min(range(len(means)), key=means.__getitem__)  # the record `retimed` returns
    return Retimed(task.id, task.workload_key, len(built), medians[0], medians[win], win > 0)


def _describe(r: Retimed) -> str:
    who = "a tuned schedule" if r.tuned_wins else "the default schedule"
    return (f"task {r.task_id}: {who} wins among {r.contenders} finalists "
            f"({r.winner_s * 1e3:.4f} ms; default {r.default_s * 1e3:.4f} ms)")  # fmt: skip
