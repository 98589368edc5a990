"""The cost model interface, the random model, and the `create` / `load` factory.

>>> model = create("xgb", seed=0)
>>> model.update(states, costs_s)          # mean seconds; None or inf = failed
>>> scores = model.predict(candidates)     # higher = predicted faster
>>> model.save(run_dir / "cost_model.json"); model = load(run_dir / "cost_model.json")
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compiler.cost_model.dataset import Cost
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, Step
from compiler.te.dag import ComputeDAG

# (workload key, DAG, steps, costs): a measurement record, as the records store yields it
Record = tuple[str, ComputeDAG, Sequence[Step], Cost]


class CostModel(ABC):
    """Scores schedule states of any task; learns from measured ones."""

    kind = ""

    @abstractmethod
    def update(self, states: Sequence[State], costs_s: Sequence[Cost]) -> None:
        """Learn from measured states (mean seconds each; None/inf = failed)."""

    @abstractmethod
    def predict(self, states: Sequence[State]) -> np.ndarray:
        """One float64 score per state, higher = faster; -inf for states that do not lower."""

    def prefetch(self, states: Sequence[State]) -> None:
        """Compute ahead what `predict(states)` will need (nothing by default)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """Everything `from_json` needs to predict exactly as this model does."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: dict[str, Any]) -> CostModel: ...

    def fit_from_records(self, records: Iterable[Record]) -> int:
        """Warm start from earlier measurements; returns how many were usable."""
        by_task: dict[str, tuple[list[State], list[Cost]]] = {}
        for key, dag, steps, costs in records:
            try:
                state = State.replay(dag, steps)
            except ScheduleError:
                continue
            states, task_costs = by_task.setdefault(key, ([], []))
            states.append(state)
            task_costs.append(costs)
        for states, task_costs in by_task.values():
            self.update(states, task_costs)
        return sum(len(s) for s, _ in by_task.values())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        return load(path)


class RandomModel(CostModel):
    """Uniform random scores: the `random` policy's model and the warm-up fallback."""

    kind = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def update(self, states: Sequence[State], costs_s: Sequence[Cost]) -> None:
        pass

    def predict(self, states: Sequence[State]) -> np.ndarray:
        return self.rng.random(len(states))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RandomModel:
        return cls(seed=int(obj.get("seed", 0)))


def _kinds() -> dict[str, type[CostModel]]:
    from compiler.cost_model.xgb_model import XGBModel

    return {"random": RandomModel, "xgb": XGBModel}


def create(kind: str | CostModel = "xgb", **options: Any) -> CostModel:
    """A cost model by name ("xgb", "random"); a model object is returned as is."""
    if isinstance(kind, CostModel):
        return kind
    kinds = _kinds()
    if kind not in kinds:
        raise ValueError(f"unknown cost model {kind!r}; choose one of {', '.join(sorted(kinds))}")
    return kinds[kind](**options)


def load(path: str | Path) -> CostModel:
    """A model saved by `CostModel.save`."""
    obj = json.loads(Path(path).read_text())
    kind = obj.get("kind")
    kinds = _kinds()
    if kind not in kinds:
        raise ValueError(f"{path}: not a saved cost model (kind {kind!r})")
    return kinds[kind].from_json(obj)
