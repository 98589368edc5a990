"""Tune one task: rounds of "policy proposes, measurer measures, policy learns".

Resumable: records already in the store for this workload and target are fed
to the policy first (so they are never proposed again and the cost model starts
warm), and `trials` counts only new measurements.

Search ahead (`ahead`, by default when the timing leaves a core idle;
compiler/search/ahead.py): the next
round's evolution runs while this round's candidates are timed, with the
model of one round earlier; the next round scores what it found again with
the model that learned from the results, and chooses. `RoundLog.ahead_s` is
that search's time, `search_s` the part of it the round waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from compiler.measure import MeasureInput, Measurer
from compiler.records import MeasureRecord, RecordStore
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from compiler.search.ahead import leaves_a_core_idle, measure_while_searching
from compiler.search.policy import SearchPolicy
from compiler.task import SearchTask

MAX_ERRORS_IN_A_ROW = 150  # REFERENCE.md §7: give up on a task after this many


@dataclass
class RoundLog:
    round: int
    trials: int
    best_cost_s: float
    search_s: float
    build_s: float
    measure_s: float
    errors: int
    learn_s: float = 0.0  # the policy's update: features of the results, model retraining
    ahead_s: float = 0.0  # the next round's search, run while this round was measured


@dataclass
class TuneResult:
    task: SearchTask
    trials: int = 0
    best_cost_s: float = float("inf")
    best_state: State | None = None
    rounds: list[RoundLog] = field(default_factory=list)
    resumed: int = 0
    stop_reason: str = ""

    @property
    def gflops(self) -> float:
        return self.task.flop_count / self.best_cost_s / 1e9 if self.best_state else 0.0


def resume(task: SearchTask, policy: SearchPolicy, store: RecordStore, target: str) -> int:
    """Feed the task's earlier records (this target) to the policy; returns their count."""
    states, costs = [], []
    for rec in store.records(task.workload_key):
        if rec.target != target:
            continue
        state = _replay(task, rec)
        if state is not None:
            meta = rec.settings.get("template") if isinstance(rec.settings, dict) else None
            if isinstance(meta, dict):
                policy.note_meta(state, meta)
            states.append(state)
            costs.append(rec.mean_cost_s if rec.error_kind is None else None)
    if states:
        policy.update(states, costs)
    return len(states)


def _replay(task: SearchTask, rec: MeasureRecord) -> State | None:
    try:
        return State.replay(task.dag, steps_from_json(rec.steps))
    except ScheduleError:
        return None


def tune_task(
    task: SearchTask,
    policy: SearchPolicy,
    measurer: Measurer,
    *,
    trials: int,
    per_round: int = 64,
    early_stopping: int | None = None,
    on_round: Callable[[RoundLog, TuneResult], None] | None = None,
    baseline: State | None = None,
    ahead: bool | None = None,
) -> TuneResult:
    """Measure up to `trials` new candidates of `task`, `per_round` at a time.

    `baseline` (say the op's default schedule) is measured first unless it was
    before, so the result is never slower than it; being measured, it also seeds
    the policy's search (a sketch policy mutates its best measured programs).
    """
    result = TuneResult(task)
    if measurer.store is not None:
        result.resumed = resume(task, policy, measurer.store, measurer.target.target)
    stale, errors_in_a_row, best = 0, 0, policy.best_cost_s
    if ahead is None:
        ahead = leaves_a_core_idle(getattr(measurer, "runner", None))
    while result.trials < trials:
        t0 = time.perf_counter()
        n = min(per_round, trials - result.trials)
        first = [] if baseline is None or policy.is_measured(baseline) else [baseline]
        more = policy.next_candidates(n - len(first)) if n > len(first) else []
        cands = first + [c for c in more if not first or c.steps != first[0].steps]
        baseline = None
        search_s = time.perf_counter() - t0
        if not cands:
            result.stop_reason = "search space exhausted"
            break
        b0, m0 = measurer.stats.build_s, measurer.stats.measure_s
        inputs = [MeasureInput(task, s, policy.meta_for(s)) for s in cands]
        n_next = min(per_round, trials - result.trials - len(cands))
        prepare = partial(policy.prepare, n_next, cands) if ahead and n_next > 0 else None
        pairs, times = measure_while_searching(measurer, inputs, prepare)
        search_s += times.waited_s
        states = [inp.state for inp, _ in pairs]
        costs = [r.mean_cost_s if r.is_valid else None for _, r in pairs]
        build_s, measure_s = measurer.stats.build_s - b0, measurer.stats.measure_s - m0
        policy.note_round(search_s=search_s, tuning_s=build_s + measure_s, candidates=len(pairs))
        t0 = time.perf_counter()
        policy.update(states, costs)
        learn_s = time.perf_counter() - t0
        result.trials += len(pairs)
        n_err = sum(c is None for c in costs)
        errors_in_a_row = errors_in_a_row + n_err if n_err == len(costs) else 0
        improved = policy.best_cost_s < best
        stale = 0 if improved else stale + len(pairs)
        best = policy.best_cost_s
        log = RoundLog(
            len(result.rounds),
            len(pairs),
            best,
            search_s,
            build_s,
            measure_s,
            n_err,
            learn_s,
            times.ran_s,
        )
        result.rounds.append(log)
        if on_round is not None:
            on_round(log, result)
        if not pairs:
            result.stop_reason = "no new candidate"
            break
        if errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
            result.stop_reason = f"{errors_in_a_row} failed candidates in a row"
            break
        if early_stopping is not None and stale >= early_stopping:
            result.stop_reason = f"no improvement in {stale} trials"
            break
    got = policy.best(1)
    if got:
        result.best_cost_s, result.best_state = got[0]
    return result
