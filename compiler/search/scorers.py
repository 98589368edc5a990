"""Scorers that need no training: the stand-in before a cost model has data."""

from __future__ import annotations

import numpy as np

from compiler.schedule.state import State


class RandomScorer:
    """Uniform random scores: evolution then explores without guidance."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def predict(self, states: list[State]) -> np.ndarray:
        return self.rng.random(len(states))

    def update(self, states: list[State], costs_s: list[float]) -> None:
        """Nothing to learn."""
