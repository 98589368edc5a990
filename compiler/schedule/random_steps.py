"""Random legal step sequences: the `random` search policy's proposals and the
property tests' generator. Illegal proposals are dropped, so every returned
state is legal by construction."""

from __future__ import annotations

import numpy as np

from compiler.schedule.stage import Attach, IterType
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    ComputeRoot,
    Fuse,
    Pragma,
    Reorder,
    Rfactor,
    ScheduleError,
    Split,
    Step,
)


def random_state(state: State, rng: np.random.Generator, n_steps: int) -> State:
    """`state` with up to `n_steps` random legal steps applied."""
    for _ in range(n_steps * 4):
        if len(state.steps) >= n_steps:
            break
        step = propose(state, rng)
        if step is None:
            continue
        try:
            state = state.apply(step)
        except ScheduleError:
            continue
    return state


def propose(state: State, rng: np.random.Generator) -> Step | None:
    stages = [
        k
        for k, s in enumerate(state.stages)
        if not s.is_placeholder and s.attach is not Attach.INLINE
    ]
    if not stages:
        return None
    k = int(rng.choice(stages))
    maker = _MAKERS[int(rng.integers(len(_MAKERS)))]
    return maker(state, k, rng)


def _split(state: State, k: int, rng: np.random.Generator) -> Step | None:
    iters = state.stages[k].iters
    cands = [i for i, it in enumerate(iters) if it.extent and it.extent > 1]
    if not cands:
        return None
    i = int(rng.choice(cands))
    ext = iters[i].extent
    assert ext is not None
    parts = int(rng.integers(1, 4))
    factors = tuple(int(rng.integers(1, ext + 1)) for _ in range(parts))
    return Split(k, i, factors)


def _fuse(state: State, k: int, rng: np.random.Generator) -> Step | None:
    n = len(state.stages[k].iters)
    if n < 2:
        return None
    i = int(rng.integers(n - 1))
    return Fuse(k, (i, i + 1))


def _reorder(state: State, k: int, rng: np.random.Generator) -> Step | None:
    n = len(state.stages[k].iters)
    return Reorder(k, tuple(int(x) for x in rng.permutation(n))) if n else None


def _compute_at(state: State, k: int, rng: np.random.Generator) -> Step | None:
    consumers = state.consumers(k)
    if len(consumers) != 1:
        return None
    c = consumers[0]
    n = len(state.stages[c].iters)
    return ComputeAt(k, c, int(rng.integers(n))) if n else None


def _location(state: State, k: int, rng: np.random.Generator) -> Step | None:
    return ComputeInline(k) if rng.random() < 0.5 else ComputeRoot(k)


def _cache_write(state: State, k: int, rng: np.random.Generator) -> Step | None:
    return CacheWrite(k)


def _rfactor(state: State, k: int, rng: np.random.Generator) -> Step | None:
    iters = state.stages[k].iters
    cands = [i for i, it in enumerate(iters) if it.type is IterType.REDUCE]
    return Rfactor(k, int(rng.choice(cands))) if cands else None


def _annotate(state: State, k: int, rng: np.random.Generator) -> Step | None:
    iters = state.stages[k].iters
    if not iters:
        return None
    i = int(rng.integers(len(iters)))
    kinds = [Annotation.PARALLEL, Annotation.VECTORIZE, Annotation.UNROLL]
    return Annotate(k, i, kinds[int(rng.integers(len(kinds)))])


def _pragma(state: State, k: int, rng: np.random.Generator) -> Step | None:
    if not state.stages[k].iters:
        return None
    value = int(rng.choice([0, 16, 64, 512]))
    return Pragma(k, 0, "auto_unroll_max_step", value)


_MAKERS = [
    _split,
    _split,
    _split,
    _fuse,
    _reorder,
    _compute_at,
    _compute_at,
    _location,
    _cache_write,
    _rfactor,
    _annotate,
    _annotate,
    _pragma,
]
