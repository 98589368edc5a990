"""Restore a scheduled run from the records database (and its decision log).

Each task's records on the target, in timestamp order, are cut into the
rounds they were measured in: the round sizes come from the decision log when
there is one and it agrees with the records; otherwise (no log, or a log of a
different database) every task's records are cut into rounds of `per_round`.
Records the log does not cover (the round in flight when the run was killed,
or measurements of an earlier run) become extra rounds after the logged ones,
ordered by their first timestamp.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from compiler.records import MeasureRecord, RecordStore
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.task import SearchTask


@dataclass(frozen=True)
class TaskRecords:
    """One task's replayable records on one target, oldest first."""

    states: list[State]
    costs_s: list[float | None]  # None: an error record
    timestamps: list[float]
    metas: list[dict | None]  # a template policy's config meta (settings["template"])


@dataclass(frozen=True)
class PlannedRound:
    task: int
    start: int  # slice of the task's records
    stop: int


def task_records(task: SearchTask, store: RecordStore, target: str) -> TaskRecords:
    """The task's records on `target` that still replay on its DAG, in timestamp order."""
    rows: list[tuple[float, State, MeasureRecord]] = []
    for rec in store.records(task.workload_key):
        if rec.target != target or "retimed" in rec.settings:  # a re-timing is no trial
            continue
        state = _replay(task, rec)
        if state is not None:
            rows.append((rec.timestamp, state, rec))
    rows.sort(key=lambda r: r[0])  # stable: insertion order among equal timestamps
    return TaskRecords(
        [s for _, s, _ in rows],
        [None if r.error_kind is not None else r.mean_cost_s for _, _, r in rows],
        [t for t, _, _ in rows],
        [_meta(r) for _, _, r in rows],
    )


def _meta(rec: MeasureRecord) -> dict | None:
    meta = rec.settings.get("template") if isinstance(rec.settings, dict) else None
    return meta if isinstance(meta, dict) else None


def _replay(task: SearchTask, rec: MeasureRecord) -> State | None:
    try:
        return State.replay(task.dag, steps_from_json(rec.steps))
    except (ScheduleError, KeyError, TypeError, ValueError):
        return None  # a record of an older step language


def plan_rounds(
    records: Sequence[TaskRecords],
    workload_keys: Sequence[str],
    log_lines: Sequence[dict[str, Any]],
    per_round: int,
) -> tuple[list[PlannedRound], bool]:
    """The rounds to replay in their global order, and whether the log was used."""
    used = [0] * len(records)
    plan = _logged_rounds(records, workload_keys, log_lines, used)
    log_used = plan is not None
    if plan is None:
        warnings.warn(
            "decision log does not match the records database (more trials logged than "
            "recorded); restoring rounds of per_round trials instead",
            stacklevel=3,
        )
        plan, used = [], [0] * len(records)
    extra = []
    for i, recs in enumerate(records):
        for start in range(used[i], len(recs.costs_s), per_round):
            stop = min(start + per_round, len(recs.costs_s))
            extra.append((recs.timestamps[start], i, PlannedRound(i, start, stop)))
    extra.sort(key=lambda e: (e[0], e[1]))
    return plan + [r for _, _, r in extra], log_used and bool(log_lines)


def _logged_rounds(
    records: Sequence[TaskRecords],
    workload_keys: Sequence[str],
    log_lines: Sequence[dict[str, Any]],
    used: list[int],
) -> list[PlannedRound] | None:
    """The log's rounds as slices of the records (None when the log claims too many)."""
    index = {k: i for i, k in enumerate(workload_keys)}
    plan = []
    for line in log_lines:
        i = index.get(line.get("workload_key", ""))
        if i is None:
            continue  # a task that is not part of this run
        n = int(line["trials"])
        if used[i] + n > len(records[i].costs_s):
            return None
        plan.append(PlannedRound(i, used[i], used[i] + n))
        used[i] += n
    return plan
