"""Per-task bookkeeping of a scheduled run: rounds, trials, best latency and
its history, and why the task stopped.

Both a live round (`TaskScheduler.record`) and a round restored from the
records database (`resume`) go through `TaskState.add_round`, so a resumed run
is in exactly the state the interrupted one was in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# stop reasons (TaskState.stop_reason)
EXHAUSTED = "search space exhausted"
NO_NEW_CANDIDATE = "no new candidate"
GLOBAL_EARLY_STOPPING = "global early stopping"

MAX_ERRORS_IN_A_ROW = 150  # give up on a task after this many failed candidates in a row

# A round resets a task's stale-trial count only when it lowers the best
# latency by at least this fraction: the best of many noisy timings of similar
# programs keeps creeping down by a fraction of a percent, which would keep a
# plateaued task alive forever. (The history and the best latency take every
# gain; only the early-stopping count ignores the small ones.)
MIN_GAIN = 0.01


@dataclass
class TaskState:
    """One task's progress; `history[r]` is the best latency after its round r."""

    trials: int = 0
    rounds: int = 0
    best_cost_s: float = math.inf
    history: list[float] = field(default_factory=list)
    stale_trials: int = 0  # trials since the best latency last fell
    errors_in_a_row: int = 0  # failed trials in whole failed rounds since the last valid one
    done: bool = False
    stop_reason: str = ""

    @property
    def is_measured(self) -> bool:
        """Whether the task has at least one valid measurement."""
        return math.isfinite(self.best_cost_s)

    def add_round(self, costs_s: Sequence[float | None], *, early_stopping: int | None) -> bool:
        """Count one round of measurements (None or inf: failed); whether the best fell.

        Marks the task done after a round with no measurement, after
        MAX_ERRORS_IN_A_ROW failures in a row (counted per whole failed round,
        so the order of results inside a round does not matter), or after
        `early_stopping` trials without a gain of at least MIN_GAIN.
        """
        costs = [math.inf if c is None else float(c) for c in costs_s]
        best = min(costs, default=math.inf)
        improved = best < self.best_cost_s
        gained = improved and (not self.is_measured or best < self.best_cost_s * (1 - MIN_GAIN))
        self.best_cost_s = min(best, self.best_cost_s)
        self.trials += len(costs)
        self.rounds += 1
        self.history.append(self.best_cost_s)
        self.stale_trials = 0 if gained else self.stale_trials + len(costs)
        all_failed = all(not math.isfinite(c) for c in costs)
        self.errors_in_a_row = self.errors_in_a_row + len(costs) if all_failed else 0
        if not costs:
            self.stop(NO_NEW_CANDIDATE)
        elif self.errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
            self.stop(f"{self.errors_in_a_row} failed candidates in a row")
        elif early_stopping is not None and self.stale_trials >= early_stopping:
            self.stop(f"no improvement in {self.stale_trials} trials")
        return improved

    def stop(self, reason: str) -> None:
        if not self.done:
            self.done, self.stop_reason = True, reason
