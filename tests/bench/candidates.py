"""Candidate schedules for measurement tests and benchmarks (not a test module):
the default schedule with its split factors redrawn, so every candidate is a
plausible, quick-to-compile program."""

from __future__ import annotations

import numpy as np

from compiler import ops, te
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, Split
from compiler.task import SearchTask
from compiler.te.dag import ComputeDAG


def matmul_task(m: int, n: int, k: int) -> SearchTask:
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    return SearchTask(f"matmul_{m}x{n}x{k}", ComputeDAG([ops.matmul(a, b)]))


def conv_task(n: int, c: int, hw: int, f: int, kernel: int, pad: int) -> SearchTask:
    x = te.placeholder((n, c, hw, hw), name="x")
    w = te.placeholder((f, c, kernel, kernel), name="w")
    y = ops.conv2d_nchw(x, w, stride=1, padding=pad)
    return SearchTask(f"conv2d_{n}x{c}x{hw}x{hw}_{f}x{kernel}x{kernel}", ComputeDAG([y]))


def default_variants(task: SearchTask, count: int, seed: int = 0, max_factor: int = 32) -> list:
    """`count` distinct states: the default schedule's steps with random divisor split factors."""
    rng = np.random.default_rng(seed)
    base = default_schedule(task.dag).steps
    out: dict[tuple, State] = {}
    for _ in range(count * 20):
        if len(out) >= count:
            break
        state = _redraw(task, base, rng, max_factor)
        if state is not None:
            out.setdefault(tuple(state.steps), state)
    return list(out.values())


def _redraw(task: SearchTask, steps, rng: np.random.Generator, max_factor: int) -> State | None:
    state = State.initial(task.dag)
    try:
        for step in steps:
            if isinstance(step, Split):
                extent = state.stages[step.stage].iters[step.iter].extent or 1
                divisors = [d for d in range(1, min(extent, max_factor) + 1) if extent % d == 0]
                step = Split(step.stage, step.iter, (int(rng.choice(divisors)),))
            state = state.apply(step)
    except ScheduleError:
        return None
    return state
