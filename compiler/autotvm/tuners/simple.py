"""Tuners without a model: grid order and uniform random without replacement."""

from __future__ import annotations

from compiler.autotvm.space import ConfigSpace
from compiler.autotvm.tuners.base import Tuner


class GridTuner(Tuner):
    """Indices in order 0, 1, 2, ... (skipping any already measured)."""

    def __init__(self, space: ConfigSpace, *, seed: int = 0) -> None:
        super().__init__(space, seed=seed)
        self.counter = 0

    def _next(self) -> int | None:
        while self.counter < self.size and self.counter in self.proposed:
            self.counter += 1
        return self.counter if self.counter < self.size else None


class RandomTuner(Tuner):
    """Uniformly random configs, never one twice."""

    def _next(self) -> int | None:
        return self.random_unproposed()
