"""Our kernels of a task timed in isolation: its tuned kernel (its best record on this
CPU, else the default schedule) and its default one, interleaved round by round on
seeded random inputs (profile.json's `tuned_s` and `default_s`, models.ort_profile)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import Kernel, aligned, load
from models.network import default_schedule_for
from models.partition import TuningTask
from models.tuned import RecordSchedules

ROUNDS = 5  # interleaved timing rounds per task
MIN_ROUND_S = 0.002  # one round lasts at least this long


def task_times(task: TuningTask, schedules: RecordSchedules | None) -> dict[str, Any]:
    """The task's row of profile.json: its id, `tuned_s`, `default_s` and `tuned`."""
    default = _kernel(task, default_schedule_for(task))
    tuned, is_tuned = default, False
    if schedules is not None:
        state = schedules(task)
        is_tuned = task.workload_key in schedules.tuned
        tuned = _kernel(task, state) if is_tuned else default
    tuned_s, default_s = time_interleaved(_bound(tuned), _bound(default))
    if not is_tuned:
        tuned_s = default_s  # the same kernel: one number, not two noisy ones
    return {"id": task.id, "tuned_s": tuned_s, "default_s": default_s, "tuned": is_tuned}


def _kernel(task: TuningTask, state) -> Kernel:
    return load(build(lower(state, name=f"task{task.id}")))


def _bound(kernel: Kernel) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    arrays = [
        aligned(rng.standard_normal(p.shape).astype(np.dtype(p.dtype))) for p in kernel.params
    ]
    return kernel.bind(*arrays)


def time_interleaved(a: Callable[[], None], b: Callable[[], None]) -> tuple[float, float]:
    """Seconds per call of `a` and of `b`: the best of ROUNDS interleaved rounds."""
    a()
    b()
    number = _calls_per_round(a)
    a_s, b_s = [], []
    for _ in range(ROUNDS):
        a_s.append(_mean_call_s(a, number))
        b_s.append(_mean_call_s(b, number))
    return min(a_s), min(b_s)


def _calls_per_round(fn: Callable[[], None]) -> int:
    number = 1
    while _mean_call_s(fn, number) * number < MIN_ROUND_S and number < 1 << 20:
        number *= 4
    return number


def _mean_call_s(fn: Callable[[], None], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number
