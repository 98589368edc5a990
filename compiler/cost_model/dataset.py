"""Training data of the cost model: per task, each measured program's feature rows
and mean cost; labels are normalized throughput within the task.

Programs may carry an id (the steps hash): a program added again under its id
replaces the earlier entry instead of counting twice. Programs added as `prior`
(a warm start: measured by earlier runs, training_file.py) count in `len` but not
in `n_live`, the measurements of this run; the same program measured again
(a resumed run's records) turns live."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
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
    ids: list[str | None] = field(default_factory=list)  # None: no id (never merged)
    live: list[bool] = field(default_factory=list)  # False: prior data (a warm start)
    where: dict[str, int] = field(default_factory=dict)  # id -> index

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
        self.n_live = 0  # programs measured by this run (not prior data)

    def __len__(self) -> int:
        return sum(len(t.costs_s) for t in self.tasks.values())

    def add(
        self,
        task_key: str,
        features: Iterable[np.ndarray],
        costs: Iterable[Cost],
        ids: Iterable[str | None] | None = None,
        *,
        prior: bool = False,
    ) -> int:
        """Add measured programs; how many were new. A program whose id is known
        replaces the entry (prior data never replaces a live one)."""
        task = self.tasks.setdefault(task_key, TaskData())
        new = 0
        for f, c, pid in zip(features, costs, ids if ids is not None else _nones()):
            i = task.where.get(pid) if pid is not None else None
            if i is not None:
                if prior and task.live[i]:
                    continue
                task.features[i], task.costs_s[i] = f, mean_cost_s(c)
                if not prior and not task.live[i]:
                    task.live[i] = True
                    self.n_live += 1
                continue
            if pid is not None:
                task.where[pid] = len(task.ids)
            task.features.append(f)
            task.costs_s.append(mean_cost_s(c))
            task.ids.append(pid)
            task.live.append(not prior)
            self.n_live += not prior
            new += 1
        return new

    def live_programs(self) -> Iterator[tuple[str, str, float, np.ndarray]]:
        """(task key, id, mean seconds, rows) of every live program that has an id."""
        for key, task in self.tasks.items():
            for f, c, pid, live in zip(task.features, task.costs_s, task.ids, task.live):
                if live and pid is not None:
                    yield key, pid, c, f

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


def _nones() -> Iterator[None]:
    while True:
        yield None
