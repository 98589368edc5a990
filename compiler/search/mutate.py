"""Mutations of complete programs (docs/search.md#evolution), each a rewrite of the step
list followed by a replay; an illegal result is dropped (None).

CPU weights as Ansor's: tile size 0.90, compute location 0.05, auto-unroll
0.04, parallel granularity 0.01. Added (the seed names it, Ansor's code lacks
it): a loop-order swap, weight 0.05 — two neighbouring loops of a tiled stage's
reorder exchange places. `crossover` (the paper has it, the code does not) swaps
stages' tile sizes between two programs of one sketch; evolution uses it only with
EvolutionConfig.crossover_prob > 0 (see compiler/search/evolution.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    ComputeAt,
    Fuse,
    Pragma,
    Reorder,
    ScheduleError,
    Split,
    Step,
)
from compiler.search.annotate import (
    UNROLL_STEPS,
    AnnotateConfig,
    _divisors,
    attach_candidates,
    splits_batch_axis,
)

Mutation = Callable[[State, np.random.Generator, AnnotateConfig], State | None]


PREFIX_ENTRIES = 4096  # cached replays of step-list prefixes (roulette picks parents again)
_prefixes: OrderedDict[tuple, State] = OrderedDict()


def prefix_state(state: State, index: int) -> State:
    """The state after the first `index` steps of `state` (cached: a mutation replays
    the unchanged prefix of its parent's steps, and good parents are mutated often)."""
    key = (state.dag.workload_key, state.steps[:index])
    got = _prefixes.get(key)
    if got is None:
        got = _prefixes[key] = State.replay(state.dag, state.steps[:index])
        if len(_prefixes) > PREFIX_ENTRIES:
            _prefixes.popitem(last=False)
    else:
        _prefixes.move_to_end(key)
    return got


def replay_with(state: State, index: int, step: Step) -> State | None:
    """The state with step `index` replaced by `step`, or None when that is illegal."""
    try:
        out = prefix_state(state, index)
        for st in (step, *state.steps[index + 1 :]):
            out = out.apply(st)
        return out
    except ScheduleError:
        return None


def _split_extents(state: State, index: int) -> int | None:
    """The extent of the loop split by step `index` at that point of the replay;
    None for a batch axis (kept whole: annotate.py `splits_batch_axis`)."""
    prefix = prefix_state(state, index)
    step = state.steps[index]
    assert isinstance(step, Split)
    if splits_batch_axis(prefix, step):
        return None
    return prefix.stages[step.stage].iters[step.iter].extent


def mutate_tile_size(state: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    """Move a divisor from one tile level of a split to another."""
    splits = [
        i for i, s in enumerate(state.steps) if isinstance(s, Split) and None not in s.factors
    ]
    if not splits:
        return None
    index = splits[int(rng.integers(len(splits)))]
    step = state.steps[index]
    assert isinstance(step, Split)
    extent = _split_extents(state, index)
    if extent is None:
        return None
    inner = int(np.prod(step.factors))
    if extent % inner:
        return None  # ragged splits keep their factors
    parts = [extent // inner, *step.factors]
    src_choices = [p for p, v in enumerate(parts) if v > 1]
    if not src_choices:
        return None
    src = src_choices[int(rng.integers(len(src_choices)))]
    divisors = [d for d in _divisors(int(parts[src])) if d > 1]
    d = divisors[int(rng.integers(len(divisors)))]
    dst = int(rng.integers(len(parts) - 1))
    dst = dst if dst < src else dst + 1
    parts[src] //= d
    parts[dst] *= d
    if parts[-1] > cfg.max_innermost:
        return None
    return replay_with(state, index, replace(step, factors=tuple(int(p) for p in parts[1:])))


def mutate_auto_unroll(state: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    pragmas = [i for i, s in enumerate(state.steps) if isinstance(s, Pragma)]
    if not pragmas:
        return None
    index = pragmas[int(rng.integers(len(pragmas)))]
    step = state.steps[index]
    assert isinstance(step, Pragma)
    values = [v for v in UNROLL_STEPS if v != step.value and v]
    return replay_with(state, index, replace(step, value=int(rng.choice(values))))


def mutate_compute_location(
    state: State, rng: np.random.Generator, cfg: AnnotateConfig
) -> State | None:
    """Move a computed-at stage to another loop of its consumer (tiled stages excluded)."""
    cands = [
        i
        for i, s in enumerate(state.steps)
        if isinstance(s, ComputeAt) and not state.stages[s.stage].relations
    ]
    if not cands:
        return None
    index = cands[int(rng.integers(len(cands)))]
    step = state.steps[index]
    assert isinstance(step, ComputeAt)
    prefix = State.replay(state.dag, state.steps[:index])
    options = [i for i in attach_candidates(prefix, step.target) if i != step.target_iter]
    if not options:
        return None
    return replay_with(state, index, replace(step, target_iter=int(rng.choice(options))))


def mutate_parallel(state: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    """Fuse one loop fewer or more into a parallel loop (later steps on it re-indexed)."""
    for i, s in enumerate(state.steps[:-1]):
        if not _is_parallel_fuse(s, state.steps[i + 1]):
            continue
        assert isinstance(s, Fuse)
        delta = 1 if rng.random() < 0.5 else -1
        count = len(s.iters) + delta
        if count < 2:
            return None
        steps = list(state.steps)
        steps[i] = Fuse(s.stage, tuple(range(count)))
        steps[i + 2 :] = [_shift(x, s.stage, -delta) for x in steps[i + 2 :]]
        try:
            return State.replay(state.dag, steps)
        except ScheduleError:
            return None
    return None


def _is_parallel_fuse(step: Step, nxt: Step) -> bool:
    """A fuse of the outermost loops whose result the next step marks parallel."""
    return (
        isinstance(step, Fuse)
        and isinstance(nxt, Annotate)
        and nxt.annotation is Annotation.PARALLEL
        and nxt.stage == step.stage
        and step.iters[0] == 0
    )


def _shift(step: Step, stage: int, delta: int) -> Step:
    """Re-index a later step on `stage` after its outer fused loop count changed."""
    if step.stage != stage:
        return step
    if isinstance(step, (Annotate, Pragma)) and step.iter > 0:
        return replace(step, iter=step.iter + delta)
    if isinstance(step, Fuse):
        return replace(step, iters=tuple(i + delta for i in step.iters))
    return step


def mutate_loop_order(state: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    """Swap two neighbouring entries of a Reorder step."""
    cands = [i for i, s in enumerate(state.steps) if isinstance(s, Reorder) and len(s.order) > 1]
    if not cands:
        return None
    index = cands[int(rng.integers(len(cands)))]
    step = state.steps[index]
    assert isinstance(step, Reorder)
    p = int(rng.integers(len(step.order) - 1))
    order = list(step.order)
    order[p], order[p + 1] = order[p + 1], order[p]
    return replay_with(state, index, Reorder(step.stage, tuple(order)))


MUTATIONS: list[tuple[Mutation, float]] = [
    (mutate_tile_size, 0.90),
    (mutate_compute_location, 0.05),
    (mutate_auto_unroll, 0.04),
    (mutate_parallel, 0.01),
    (mutate_loop_order, 0.05),
]


def mutate(state: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    """One weighted-random mutation (a few tries before giving up)."""
    weights = np.array([w for _, w in MUTATIONS])
    for _ in range(4):
        fn = MUTATIONS[int(rng.choice(len(MUTATIONS), p=weights / weights.sum()))][0]
        out = fn(state, rng, cfg)
        if out is not None:
            return out
    return None


def crossover(a: State, b: State, rng: np.random.Generator) -> State | None:
    """The paper's crossover (Ansor's code has none): for two programs of the same
    sketch, the child takes each stage's tile sizes (its Split steps) from a parent
    chosen per stage, everything else (annotations, compute locations) from `a`.

    Programs of one sketch have the sketch's Split steps in the same order;
    annotation may add splits after them (a vectorized loop longer than the cap is
    split again, depending on the tile size drawn). So the k-th splits of `a` and
    `b` correspond up to the first pair that splits a different loop. None when no
    pair corresponds, or when the child does not replay.
    """
    splits_a = [(i, st) for i, st in enumerate(a.steps) if isinstance(st, Split)]
    splits_b = [st for st in b.steps if isinstance(st, Split)]
    shape = lambda st: (st.stage, st.iter, len(st.factors))
    pairs = []
    for (i, sa), sb in zip(splits_a, splits_b):
        if shape(sa) != shape(sb):
            break
        pairs.append((i, sa, sb))
    if not pairs:
        return None
    stages = sorted({sa.stage for _, sa, _ in pairs})
    from_b = {stage for stage in stages if rng.random() < 0.5}
    steps = list(a.steps)
    for i, sa, sb in pairs:
        if sa.stage in from_b:
            steps[i] = sb
    if tuple(steps) == tuple(a.steps):
        return None
    try:
        return State.replay(a.dag, steps)
    except ScheduleError:
        return None
