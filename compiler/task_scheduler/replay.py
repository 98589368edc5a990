"""Scheduling strategies replayed on recorded per-task curves, and the oracle bound.

A long round-robin run's decision log gives every task's curve: the trials of
each of its rounds and its best latency after each. Assume a task's k-th
round ends at the same best latency whatever the other tasks did before it
(only approximately true: the cost model is shared, so its training data
depends on the order). Then:

- `replay` runs a strategy's own decisions (a real TaskScheduler, fed the
  curves through `replay_round`) for a trial budget, in milliseconds instead
  of an hour of measuring, so forward estimates, alpha or early stopping can
  be compared over many seeds;
- `oracle_trials` is the fewest trials any allocation of rounds needs to bring
  f down to a target, knowing every curve in advance: no strategy that does
  not see the future can do better, so a target below it is out of reach.

Only the default objective (sum of weight x best latency) is supported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.task_scheduler.scheduler import TaskScheduler

CURVE_ENDED = "recorded curve ended"


@dataclass(frozen=True)
class TaskCurve:
    """One task's recorded rounds: `trials[k]` measured in its round k, after which
    its best latency was `best_s[k]` (None: nothing valid yet)."""

    trials: tuple[int, ...]
    best_s: tuple[float | None, ...]

    def __len__(self) -> int:
        return len(self.trials)


@dataclass
class ReplayResult:
    points: list[tuple[int, float]]  # (total trials, f in seconds) after every round
    rounds: list[int]  # rounds per task
    curve_ends: int = 0  # tasks the strategy wanted past the end of their curve
    choices: list[int] = field(default_factory=list)  # task of every round


def curves_from_log(lines: Sequence[dict[str, Any]], n_tasks: int) -> list[TaskCurve]:
    """Per task, its rounds in the order of the decision-log `lines`."""
    trials: list[list[int]] = [[] for _ in range(n_tasks)]
    best: list[list[float | None]] = [[] for _ in range(n_tasks)]
    for line in lines:
        i = int(line["task"])
        if not 0 <= i < n_tasks:
            raise ValueError(f"decision log: task {i} out of range for {n_tasks} tasks")
        trials[i].append(int(line["trials"]))
        best[i].append(line.get("task_best_s"))
    return [TaskCurve(tuple(t), tuple(b)) for t, b in zip(trials, best)]


def replay(scheduler: TaskScheduler, curves: Sequence[TaskCurve], budget: int) -> ReplayResult:
    """Run `scheduler` (fresh, its options and strategy as configured) on `curves`
    until `budget` trials are spent or every task is done; a task the strategy
    picks after its curve's last round is stopped (counted in `curve_ends`)."""
    if scheduler.rounds:
        raise RuntimeError("replay: the scheduler has already recorded rounds")
    if len(curves) != len(scheduler.tasks):
        raise ValueError(f"replay: {len(curves)} curves for {len(scheduler.tasks)} tasks")
    out = ReplayResult([], [0] * len(curves))
    while scheduler.total_trials < budget:
        idx = scheduler.next_task()
        if idx is None:
            break
        k = scheduler.task_states[idx].rounds
        if k >= len(curves[idx]):
            scheduler.task_states[idx].stop(CURVE_ENDED)
            out.curve_ends += 1
            continue
        best = curves[idx].best_s[k]
        scheduler.replay_round(idx, [best] * curves[idx].trials[k])
        out.rounds[idx] += 1
        out.choices.append(idx)
        out.points.append((scheduler.total_trials, scheduler.objective_value))
    return out


def trials_to_reach(points: Sequence[tuple[int, float]], target: float) -> int | None:
    """The trials after which f first was <= target (None: never)."""
    return next((t for t, f in points if f <= target), None)


def oracle_trials(
    curves: Sequence[TaskCurve], weights: Sequence[float], target_s: float
) -> int | None:
    """The fewest total trials (every task's first round included) after which some
    choice of round counts k_i >= 1 has sum_i w_i * best_i(k_i) <= target_s;
    None when even every recorded round is not enough.

    A knapsack over trials: per task, k rounds cost the trials of its rounds 2..k
    and gain w_i * (best_i(1) - best_i(k)).
    """
    if any(len(c) == 0 or c.best_s[0] is None for c in curves):
        raise ValueError("oracle: every task needs a first round with a valid latency")
    base_trials = sum(c.trials[0] for c in curves)
    base_f = sum(w * c.best_s[0] for w, c in zip(weights, curves))  # type: ignore[operator]
    need = base_f - target_s
    if need <= 0:
        return base_trials
    extra = sum(sum(c.trials[1:]) for c in curves)
    gain = np.zeros(extra + 1)  # gain[t]: the most f can fall with t extra trials
    for w, c in zip(weights, curves):
        options = []  # (extra trials, gain) of stopping after round k
        spent = 0
        for k in range(1, len(c)):
            spent += c.trials[k]
            b = c.best_s[k]
            if b is not None and math.isfinite(b):
                options.append((spent, w * (c.best_s[0] - b)))  # type: ignore[operator]
        new = gain.copy()
        for cost, g in options:
            if g > 0:
                shifted = np.full_like(gain, -np.inf)
                shifted[cost:] = gain[: extra + 1 - cost] + g
                np.maximum(new, shifted, out=new)
        gain = np.maximum.accumulate(new)
    hit = np.nonzero(gain >= need * (1 - 1e-12))[0]
    return base_trials + int(hit[0]) if hit.size else None
