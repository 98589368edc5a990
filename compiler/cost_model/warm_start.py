"""Warm start across runs and models: the cost model starts from the training data of
every workload measured on this CPU, kept beside the records database
(training_file.py; docs/search.md#warm-start), and adds its own measurements to it.

    >>> model = create("xgb")
    >>> warm = attach(model, "runs/records.db", host_target_info().target)
    >>> print(warm.start_line())   # what it started from (or why it started cold)
    >>> ...                         # tuning: model.update() saves now and then
    >>> print(warm.save(model))     # at the end of the run

Only the programs measured on `target` are learned from; the file keeps the others.
At most `MAX_TRAIN_PROGRAMS` of them (each fit trains on all, and fitting takes about
1.3 s per thousand programs on one core): per workload its fastest and a stable sample
of the rest, an equal share each (at least `MIN_PER_WORKLOAD`), the workloads measured
last first. While the run goes on, the data are written after a model update when
`SAVE_EVERY_S` went by since the last write, so a killed run loses at most that much.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.cost_model.training_file import (
    PER_WORKLOAD,
    StaleTrainingFile,
    TrainingData,
    TrainingFileError,
    describe,
    read_training_file,
    training_path,
    update_training_file,
)

if TYPE_CHECKING:
    from compiler.cost_model.xgb_model import XGBModel

SAVE_EVERY_S = 120.0
MAX_TRAIN_PROGRAMS = 2048
MIN_PER_WORKLOAD = 32


@dataclass
class WarmStart:
    """A model's link to its training-data file (see the module docstring)."""

    path: Path
    target: str
    programs: int = 0  # programs of earlier runs the model started from
    workloads: int = 0  # of that many workloads
    in_file: int = 0  # programs of this target in the file
    trained: bool = False  # whether the model was trained on them before any round
    problem: str = ""  # why it started cold although the file is there
    writable: bool = True  # False: a file not to be read is never replaced
    saved_live: int = 0  # the model's own programs at the last write
    saved_at: float = field(default_factory=time.monotonic)
    kept: tuple[int, int] = (0, 0)  # (programs, workloads) of the target after the last write

    def start_line(self) -> str:
        """One line for the run's output: what the model started from."""
        if not self.writable:
            return f"warm start off: {self.problem}"
        if self.problem:
            return f"warm start: {self.problem}; starting cold (the file is replaced)"
        if not self.programs:
            return f"warm start: no programs measured on this CPU yet in {self.path}"
        what = f"{_n(self.programs, 'program')} of {_n(self.workloads, 'workload')}"
        if self.in_file > self.programs:
            what += f" (of {self.in_file})"
        if not self.trained:
            return f"warm start: {what} measured on this CPU in {self.path}, too few to train on"
        return f"warm start: cost model trained on {what} measured on this CPU ({self.path})"

    def after_update(self, model: XGBModel) -> None:
        """Write the data if `SAVE_EVERY_S` went by since the last write (model.update)."""
        if time.monotonic() - self.saved_at >= SAVE_EVERY_S:
            self.save(model)

    def save(self, model: XGBModel) -> str:
        """Merge the model's own measurements into the file; one line saying what the
        file keeps (or why nothing was written)."""
        if not self.writable:
            return f"cost model training data not written: {self.problem}"
        if model.data.n_live == self.saved_live:  # written after the last update
            self.saved_at = time.monotonic()
            if self.kept == (0, 0):
                return f"cost model training data: nothing measured, {self.path} unchanged"
            return self._kept_line()
        own = own_data(model, self.target)
        try:
            written = update_training_file(self.path, own)
        except TrainingFileError as err:
            self.writable, self.problem = False, str(err)
            return f"cost model training data not written: {err}"
        except OSError as err:
            return f"cost model training data not written to {self.path}: {err.strerror or err}"
        finally:
            self.saved_at = time.monotonic()
        self.saved_live = model.data.n_live
        self.kept = describe(written, self.target)
        return self._kept_line()

    def _kept_line(self) -> str:
        programs, workloads = self.kept
        return (f"cost model training data: {_n(programs, 'program')} of "
                f"{_n(workloads, 'workload')} measured on this CPU kept in {self.path}")  # fmt: skip


def attach(model: XGBModel, records: str | Path, target: str) -> WarmStart:
    """Warm-start `model` from the training data beside the records database
    `records` (only the programs measured on `target`; it is trained on them at once
    when there are enough) and keep its own measurements there; the link."""
    warm = WarmStart(training_path(records), target)
    try:
        data = read_training_file(warm.path)
    except StaleTrainingFile as err:
        data, warm.problem = None, str(err)
    except TrainingFileError as err:
        data, warm.problem, warm.writable = None, str(err), False
    if data is not None:
        warm.in_file = describe(data, target)[0]
        groups = list(for_training(data, target).of_target(target))
        warm.programs = model.warm_start(
            (key, g.ids, g.costs_s, g.rows) for key, g in groups
        )  # fmt: skip
        warm.workloads = len(groups)
        warm.trained = model.is_trained
    model.warm = warm
    return warm


def for_training(data: TrainingData, target: str) -> TrainingData:
    """The programs of `target` a model starts from (see the module docstring)."""
    mine = TrainingData()
    mine.groups = {(t, key): g for (t, key), g in data.groups.items() if t == target and len(g)}
    share = MAX_TRAIN_PROGRAMS // max(1, len(mine.groups))
    per_workload = min(PER_WORKLOAD, max(MIN_PER_WORKLOAD, share))
    return mine.capped(per_workload, max(1, per_workload // 4), MAX_TRAIN_PROGRAMS)


def own_data(model: XGBModel, target: str) -> TrainingData:
    """The model's own measurements (not its warm start's) as training data of `target`."""
    data = TrainingData()
    by_task: dict[str, tuple[list, list, list]] = {}
    for key, pid, cost, rows in model.data.live_programs():
        if not len(rows):
            continue  # did not lower: nothing to learn from
        ids, costs, feats = by_task.setdefault(key, ([], [], []))
        ids.append(pid)
        costs.append(cost)
        feats.append(rows)
    for key, (ids, costs, feats) in by_task.items():
        data.add(target, key, ids, costs, feats)
    return data


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
