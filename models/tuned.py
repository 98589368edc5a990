"""Schedules from a records database: each task's winner of its latest side-by-side
re-timing (models/retime.py) when nothing was tuned since, else its best valid record
on this CPU at the thread count asked for, else the default schedule (also where the record no longer replays)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler.records import RecordError, SQLiteStore, host_target_info
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from models.errors import ModelError
from models.network import default_schedule_for
from models.partition import TuningTask


@dataclass
class RecordSchedules:
    """A `schedule_for` callback; `tuned` collects the workload keys it served from records."""

    store: SQLiteStore
    target: str
    tuned: set[str] = field(default_factory=set)
    until: float | None = None  # only records measured by then (a Unix time; no re-timing)

    def __call__(self, task: TuningTask) -> State:
        key = task.workload_key
        retimed = self.store.retimed(key, self.target) if self.until is None else None
        record = retimed or self.store.best(key, self.target, self.until)
        if record is not None:
            try:
                state = State.replay(task.dag, steps_from_json(record.steps))
            except (ScheduleError, KeyError, TypeError, ValueError):
                state = None  # a record of an older step language: fall back
            if state is not None and state.is_complete:
                self.tuned.add(key)
                return state
        return default_schedule_for(task)


def record_schedules(
    path: str | Path, threads: int = 1, *, until: float | None = None
) -> RecordSchedules:
    """The callback over the records database at `path`, serving records measured on
    `threads` threads (and, with `until`, by that Unix time: the network a run had
    tuned so far). ModelError when the database is unusable."""
    if not Path(path).is_file():
        raise ModelError(f"--records {path}: no such records database")
    try:
        store = SQLiteStore(path)
    except RecordError as err:
        raise ModelError(f"--records {path}: {err}") from None
    return RecordSchedules(store, host_target_info(threads).target, until=until)
