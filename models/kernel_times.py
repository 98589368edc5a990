"""Our kernels timed for profile.json (models.ort_profile).

- In isolation (`tuned_s`, `default_s`): a task's tuned kernel (its best record on this
  CPU, else the default schedule) and its default one, interleaved round by round on
  seeded random inputs, the best round's mean per call.
- Inside whole-network runs (`network_s`, NetworkTimer): the compiled network with the
  tuned kernels, each kernel call timed, its median over the runs, summed per task over
  its occurrences: measured as models.ort_profile takes onnxruntime's nodes from its
  profiler, so the two compare like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure.interleave import time_interleaved
from compiler.runtime import Kernel, aligned, load
from models.memory_plan import allocate
from models.network import default_schedule_for
from models.partition import Partition, TuningTask
from models.tuned import RecordSchedules


@dataclass(frozen=True)
class TaskKernels:
    """A task's tuned kernel (the default one where it has no record) and default one."""

    tuned: Kernel
    default: Kernel
    is_tuned: bool


def task_kernels(task: TuningTask, schedules: RecordSchedules | None) -> TaskKernels:
    default = _kernel(task, default_schedule_for(task))
    if schedules is None:
        return TaskKernels(default, default, False)
    state = schedules(task)
    is_tuned = task.workload_key in schedules.tuned
    return TaskKernels(_kernel(task, state) if is_tuned else default, default, is_tuned)


def task_times(
    task: TuningTask, schedules: RecordSchedules | None, kernels: TaskKernels | None = None
) -> dict[str, Any]:
    """The task's row of profile.json: its id, `tuned_s`, `default_s` and `tuned`."""
    k = kernels or task_kernels(task, schedules)
    tuned_s, default_s = time_interleaved(_bound(k.tuned), _bound(k.default))
    if not k.is_tuned:
        tuned_s = default_s  # the same kernel: one number, not two noisy ones
    return {"id": task.id, "tuned_s": tuned_s, "default_s": default_s, "tuned": k.is_tuned}


def seeded_input(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A network input: standard normal floats; zeros for integers and booleans (a valid
    index, whatever the table)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)


class NetworkTimer:
    """The partitioned network run with `kernels` (workload key -> kernel) on seeded
    inputs, every kernel call timed. `run()` is one inference; the first is a warm-up
    and not counted."""

    def __init__(self, part: Partition, kernels: Mapping[str, Kernel], seed: int = 0) -> None:
        buffers = allocate(part.graph, part.subgraphs)
        rng = np.random.default_rng(seed)
        for value in part.graph.inputs:
            buffer = buffers[value.name]
            buffer[...] = seeded_input(rng, buffer.shape, buffer.dtype)
        self._calls = [kernels[s.workload_key].bind(*s.arrays(buffers)) for s in part.subgraphs]
        task_of = {s: t.id for t in part.tasks for s in t.subgraphs}
        self._tasks = [task_of[s.id] for s in part.subgraphs]
        self._task_ids = [t.id for t in part.tasks]
        self._runs: list[list[int]] = []  # per counted run: ns per call
        self._totals: list[int] = []  # per counted run: ns for the whole run
        self._warm = False

    def run(self) -> None:
        clock, spent = time.perf_counter_ns, [0] * len(self._calls)
        start = clock()
        for k, call in enumerate(self._calls):
            t0 = clock()
            call()
            spent[k] = clock() - t0
        total = clock() - start
        if self._warm:
            self._runs.append(spent)
            self._totals.append(total)
        self._warm = True

    @property
    def runs(self) -> int:
        return len(self._runs)

    def task_s(self) -> dict[int, float]:
        """Per task id: seconds per inference in its kernel calls, each call's median
        over the counted runs, summed over the task's occurrences."""
        out = dict.fromkeys(self._task_ids, 0.0)
        if self._runs:
            per_call = np.median(np.array(self._runs, dtype=float), axis=0) / 1e9
            for task, seconds in zip(self._tasks, per_call):
                out[task] += float(seconds)
        return out

    def latency_s(self) -> float:
        """Median seconds of a counted inference (every call, timers included)."""
        return float(np.median(self._totals)) / 1e9 if self._totals else float("nan")


def _kernel(task: TuningTask, state) -> Kernel:
    return load(build(lower(state, name=f"task{task.id}")))


def _bound(kernel: Kernel) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    arrays = [
        aligned(rng.standard_normal(p.shape).astype(np.dtype(p.dtype))) for p in kernel.params
    ]
    return kernel.bind(*arrays)
