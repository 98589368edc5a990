"""A baseline first: wrap a search policy so that its first proposal includes a given
schedule (the network compiler's default schedule for the task).

Why: the network runs a task's best record in place of its default schedule. A
short search (a warm-up round of random programs under an untrained model) can
find nothing as fast as the default, and the tuned network would then be slower
than the untuned one. With the default measured as an ordinary candidate, the best
record is never slower than it (seen: ResNet-18 after 64 trials ran at 41 ms with
5 tuned tasks against 21 ms untuned). Ansor has no such seed; MetaSchedule seeds
its first population with the schedules the user's database already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compiler.schedule.state import State
from compiler.search.policy import SearchPolicy


class BaselineFirst(SearchPolicy):
    """Delegates to `inner`; its first proposal starts with `baseline` unless measured."""

    def __init__(self, inner: SearchPolicy, baseline: State) -> None:  # no super(): a view
        self.inner, self.baseline = inner, baseline

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # measured, states, dag, sketches, model, ...

    def next_candidates(self, n: int) -> list[State]:
        pending = self.baseline if n > 0 else None
        if pending is not None and self.inner.is_measured(pending):
            pending = self.baseline = None
        out = self.inner.next_candidates(n - 1 if pending is not None else n)
        if pending is None:
            return out
        self.baseline = None
        return [pending, *(s for s in out if s.steps != pending.steps)][:n]

    def update(self, states: Sequence[State], costs_s: Sequence[float | None]) -> None:
        self.inner.update(states, costs_s)
