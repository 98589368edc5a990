"""The tuner interface: propose config indices of a space, learn from their costs.

Every tuner hands out each index at most once (`proposed` also holds indices
learned through `update`, e.g. from resumed records), never more than asked for,
and nothing once the space is spent. Costs are seconds; inf (or None) is a
failed config.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from compiler.autotvm.space import ConfigSpace

REJECTION_TRIES = 64  # random draws before falling back to listing the unproposed
MAX_LISTED = 1 << 22  # spaces up to this size may list their unproposed indices


class Tuner(ABC):
    """Proposes configs of `space` in batches and learns from their measured costs."""

    def __init__(self, space: ConfigSpace, *, seed: int = 0) -> None:
        self.space = space
        self.size = len(space)
        self.rng = np.random.default_rng(seed)
        self.proposed: set[int] = set()
        self.costs: dict[int, float] = {}  # index -> best cost seen (inf: failed)

    def has_next(self) -> bool:
        return len(self.proposed) < self.size

    def next_batch(self, n: int) -> list[int]:
        """Up to n indices never proposed before (fewer once the space is spent)."""
        out: list[int] = []
        while len(out) < n and self.has_next():
            index = self._next()
            if index is None:
                break
            assert index not in self.proposed, f"{type(self).__name__} repeated {index}"
            self.proposed.add(index)
            out.append(index)
        return out

    def update(self, indices: Sequence[int], costs: Sequence[float | None]) -> None:
        """Costs (seconds; inf or None: failed) of configs, proposed by this tuner or not."""
        for i, c in zip(indices, costs):
            cost = math.inf if c is None else float(c)
            self.proposed.add(i)
            self.costs[i] = min(cost, self.costs.get(i, math.inf))
        self._learn(list(indices))

    def load_history(
        self, features: np.ndarray, costs: Sequence[float], groups: Sequence[str]
    ) -> None:
        """Measurements of other workloads of the same template (transfer learning);
        `features` are their knob features. Only model-based tuners use them."""

    @property
    def best(self) -> tuple[int | None, float]:
        """(index, cost) of the cheapest config seen, (None, inf) before any."""
        if not self.costs:
            return None, math.inf
        index = min(self.costs, key=self.costs.__getitem__)
        return index, self.costs[index]

    @abstractmethod
    def _next(self) -> int | None:
        """One unproposed index, or None when the tuner has nothing left to offer."""

    def _learn(self, indices: list[int]) -> None:
        """Hook after `update` (costs are in self.costs)."""

    def random_unproposed(self) -> int | None:
        """A uniformly random index not proposed yet."""
        for _ in range(REJECTION_TRIES):
            index = self.space.random_index(self.rng)
            if index not in self.proposed:
                return index
        if self.size > MAX_LISTED:
            return None
        left = np.setdiff1d(np.arange(self.size), np.fromiter(self.proposed, np.int64))
        return int(self.rng.choice(left)) if len(left) else None


def fitness(cost: float) -> float:
    """Higher is better: 1 / cost, 0 for a failed config."""
    return 0.0 if not math.isfinite(cost) or cost <= 0 else 1.0 / cost


def run_tuner(
    tuner: Tuner,
    measure: Callable[[list[int]], Sequence[float | None]],
    trials: int,
    batch_size: int = 16,
) -> list[tuple[int, float | None]]:
    """Propose, measure and learn until `trials` configs are measured or the space is spent."""
    history: list[tuple[int, float | None]] = []
    while len(history) < trials:
        batch = tuner.next_batch(min(batch_size, trials - len(history)))
        if not batch:
            break
        costs = list(measure(batch))
        tuner.update(batch, costs)
        history.extend(zip(batch, costs))
    return history
