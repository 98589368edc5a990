"""The tuning loop: every tuning run goes through `tune`, one op or a whole network.

    next_task -> propose -> measure (build, then time; every result recorded as it
    arrives) -> record -> next_task ...

`tune-op` runs it on a scheduler of one task with a local measurer (builder and
runner processes on this machine); `sketchtune tune` runs it in a Prefect flow
with a measurer whose builds and timings are Prefect tasks (tasks/prefect_measure.py),
on threads or on a Dask cluster. The trial budget is counted here and only here;
candidates measured before (in the records database, or twice in one round) are
skipped by the measurer (`Measurer.fresh`), and a run resumes from the records
through `TaskScheduler.resume`.

Search ahead (`ahead`, by default when the timing leaves a core idle;
compiler/search/ahead.py): while a round is timed, the task likely to come next
searches its next round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compiler.measure import MeasureInput, Measurer
from compiler.schedule.state import State
from compiler.search.ahead import leaves_a_core_idle, measure_while_searching, no_clock
from compiler.task_scheduler.task_state import GLOBAL_EARLY_STOPPING, TaskState

if TYPE_CHECKING:
    from compiler.task_scheduler.scheduler import TaskScheduler

# `clock(name)` times a block of the loop under a phase name ("search", "learn"):
# the Prefect flow's phase clock (tasks/phase_clock.py); nothing by default
Clock = Callable[[str], AbstractContextManager]
OnRound = Callable[[dict[str, Any]], None]


@dataclass
class SchedulerResult:
    """What one `tune` call did, and where the run stands after it."""

    trials: int  # new measurements in this call
    total_trials: int  # every round so far, restored ones included
    objective_s: float  # f after the call (inf while a task has no valid measurement)
    best_costs_s: list[float]
    task_states: list[TaskState]
    rounds: list[dict[str, Any]] = field(default_factory=list)  # this call's log lines
    resumed: int = 0  # records restored at the start of the call
    stop_reason: str = ""


def tune(
    sched: TaskScheduler,
    measurer: Measurer,
    trials: int,
    *,
    on_round: OnRound | None = None,
    max_rounds: int | None = None,
    ahead: bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Clock | None = None,
    time_budget_s: float | None = None,
) -> SchedulerResult:
    """Rounds of next_task / propose / measure / record until `trials` new
    measurements are made, `max_rounds` rounds are done, every task is done,
    `should_stop()` says so (checked before each round: Ctrl-C in the flow), or
    `time_budget_s` seconds have passed since the call (no round starts after it).

    The first call resumes from `measurer.store` (if any, and unless `resume`
    was called), so a killed run continues where it stopped. `on_round(line)`
    gets each round's decision-log line.
    """
    clock = clock or no_clock
    resumed = 0
    if not sched.resumed and not sched.rounds and measurer.store is not None:
        resumed = sched.resume(measurer.store, measurer.target.target)
    if ahead is None:
        ahead = leaves_a_core_idle(getattr(measurer, "runner", None))
    new, lines, stop = 0, [], ""
    started = time.monotonic()
    while new < trials and (max_rounds is None or len(lines) < max_rounds):
        if should_stop is not None and should_stop():
            stop = "stopped on request"
            break
        if time_budget_s is not None and time.monotonic() - started >= time_budget_s:
            stop = "time budget spent"
            break
        idx = sched.next_task()
        if idx is None:
            break
        with clock("search"):
            states = sched.propose(idx, min(sched.per_round, trials - new))
        if states:
            n_next = min(sched.per_round, trials - new - len(states))
            prepare = sched.search_ahead(idx, states, n_next) if ahead else None
            line = measure_round(sched, measurer, idx, states, prepare, clock)
            if line is None:  # every candidate was another run's: the policy proposes others
                continue
        else:  # exhausted: a round of no trials says so in the log
            line = sched.record(idx, [], [])
        new += line["trials"]
        lines.append(line)
        if on_round is not None:
            on_round(line)
    return SchedulerResult(
        new, sched.total_trials, sched.objective_value, sched.best_costs_s,
        sched.task_states, lines, resumed, stop or _stop_reason(sched, new, trials),
    )  # fmt: skip


def measure_round(
    sched: TaskScheduler,
    measurer: Measurer,
    idx: int,
    states: list[State],
    prepare: Callable[[], object] | None = None,
    clock: Clock | None = None,
) -> dict[str, Any] | None:
    """Build and time task `idx`'s proposed `states` (those not measured before), with
    `prepare()` searching beside the timing, and record the round; its log line.

    Candidates another run on the same records database is measuring (it claimed
    them first: `Measurer.taken`) go to the policy, which never proposes them again;
    a round of nothing else is no round (None): concurrent runs split the work."""
    clock = clock or no_clock
    build0, measure0 = measurer.stats.build_s, measurer.stats.measure_s
    policy = sched.policies[idx]
    inputs = [MeasureInput(sched.tasks[idx], s, policy.meta_for(s)) for s in states]
    pairs, ahead = measure_while_searching(measurer, inputs, prepare, clock)
    taken = [inp.state for inp in getattr(measurer, "taken", ())]
    if taken:
        policy.note_taken(taken)
        if not pairs:
            return None
    with clock("learn"):
        return sched.record(
            idx,
            [inp.state for inp, _ in pairs],
            [r.mean_cost_s if r.is_valid else None for _, r in pairs],
            search_s=sched.last_search_s(idx) + ahead.waited_s,
            build_s=measurer.stats.build_s - build0,
            measure_s=measurer.stats.measure_s - measure0,
            ahead_s=ahead.ran_s,
        )


def _stop_reason(sched: TaskScheduler, new: int, trials: int) -> str:
    if new >= trials:
        return "trial budget spent"
    if not all(st.done for st in sched.task_states):
        return "round limit reached"
    if any(st.stop_reason == GLOBAL_EARLY_STOPPING for st in sched.task_states):
        return f"no improvement of f in {sched.global_stale_trials} trials"
    return "every task is done"


def round_size(trials: int, n_tasks: int, cap: int = 64, floor: int = 1) -> int:
    """Ansor's round size, min(cap, trials / tasks), but at least `floor` (and 1)."""
    return max(1, min(cap, floor), min(cap, trials // max(1, n_tasks)))
