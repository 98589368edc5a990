"""Tuners over a template's config space: grid, random, GA and XGBoost.

>>> tuner = create_tuner("xgb", space, seed=0)         # doctest: +SKIP
>>> batch = tuner.next_batch(16)                       # config indices
>>> tuner.update(batch, costs_s)                       # inf: a failed config
"""

from __future__ import annotations

from typing import Any

from compiler.autotvm.space import ConfigSpace
from compiler.autotvm.tuners.base import Tuner, fitness, run_tuner
from compiler.autotvm.tuners.ga import GATuner
from compiler.autotvm.tuners.simple import GridTuner, RandomTuner
from compiler.autotvm.tuners.xgb import XGBTuner

TUNERS: dict[str, type[Tuner]] = {
    "grid": GridTuner,
    "random": RandomTuner,
    "ga": GATuner,
    "xgb": XGBTuner,
}


def create_tuner(kind: str | Tuner, space: ConfigSpace, *, seed: int = 0, **kwargs: Any) -> Tuner:
    """A tuner by name (grid, random, ga, xgb); a Tuner object is returned as it is."""
    if isinstance(kind, Tuner):
        return kind
    if kind not in TUNERS:
        raise ValueError(f"unknown tuner {kind!r}; choose one of {', '.join(TUNERS)}")
    return TUNERS[kind](space, seed=seed, **kwargs)


__all__ = [
    "TUNERS",
    "GATuner",
    "GridTuner",
    "RandomTuner",
    "Tuner",
    "XGBTuner",
    "create_tuner",
    "fitness",
    "run_tuner",
]
