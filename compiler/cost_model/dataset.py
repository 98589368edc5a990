"""Training data of the cost model: per task, each measured program's feature rows
and mean cost; labels are normalized throughput within the task."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from compiler.cost_model.layout import N_FEATURES

Cost = float | Sequence[float] | None


def mean_cost_s(cost: Cost) -> float:
    """Mean seconds of a measurement; inf for a failed one (None, empty, inf, nan, <= 0)."""
    if cost is None:
        return math.inf
    if isinstance(cost, (int, float, np.number)):
        values = [float(cost)]
    else:
        values = [float(c) for c in cost]
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        return math.inf
    return sum(values) / len(values)


@dataclass
class TaskData:
    """Measured programs of one task (workload key)."""

    features: list[np.ndarray] = field(default_factory=list)
    costs_s: list[float] = field(default_factory=list)

    @property
    def best_s(self) -> float:
        return min(self.costs_s, default=math.inf)

    def labels(self) -> np.ndarray:
        """best latency / latency: 1 for the task's best, 0 for failures."""
        costs = np.asarray(self.costs_s, dtype=np.float64)
        best = self.best_s
        if not math.isfinite(best):
            return np.zeros(len(costs))
        return np.where(np.isfinite(costs), best / costs, 0.0)


@dataclass
class Packed:
    """Programs flattened to rows: `rows[i]` belongs to program `pack_ids[i]`."""

    rows: np.ndarray  # [n_rows, N_FEATURES] float32
    pack_ids: np.ndarray  # [n_rows] int64
    labels: np.ndarray  # [n_programs] float64
    n_programs: int

    def subset(self, programs: np.ndarray) -> Packed:
        """The rows of the chosen programs, renumbered 0..len(programs)-1."""
        remap = np.full(self.n_programs, -1, dtype=np.int64)
        remap[programs] = np.arange(len(programs))
        keep = remap[self.pack_ids] >= 0
        return Packed(
            self.rows[keep], remap[self.pack_ids[keep]], self.labels[programs], len(programs)
        )


class Dataset:
    """All measurements the model learns from, grouped by task."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskData] = {}

    def __len__(self) -> int:
        return sum(len(t.costs_s) for t in self.tasks.values())

    def add(self, task_key: str, features: Iterable[np.ndarray], costs: Iterable[Cost]) -> None:
        task = self.tasks.setdefault(task_key, TaskData())
        for f, c in zip(features, costs):
            task.features.append(f)
            task.costs_s.append(mean_cost_s(c))

    def pack(self) -> Packed:
        """Every program that has feature rows, with its task-normalized label."""
        rows: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        labels: list[float] = []
        for task in self.tasks.values():
            for f, y in zip(task.features, task.labels()):
                if len(f):
                    ids.append(np.full(len(f), len(labels), dtype=np.int64))
                    rows.append(f)
                    labels.append(y)
        if not labels:
            empty = np.zeros((0, N_FEATURES), np.float32)
            return Packed(empty, np.zeros(0, np.int64), np.zeros(0), 0)
        return Packed(np.concatenate(rows), np.concatenate(ids), np.array(labels), len(labels))
