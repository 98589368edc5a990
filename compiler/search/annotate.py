"""Random annotation: turn a sketch into a complete program (docs/search.md#annotation).

In order: fill tile sizes (a uniformly random exact factorization, innermost
factor <= 64; a batch axis of a tiled reduction stays whole at the outermost
level, a deviation: te/dag.py `batch_axes`), change compute locations of
untiled stages, parallelize fused outer loops (up to 16 x cores jobs),
auto-unroll (from {0, 16, 64, 512}), and vectorize fused inner spatial loops
up to `vector_cap` lanes. Ansor caps the
vector at 16 lanes; with AVX-512 and a code generator that splits wide vectors
into registers, a wider cap is a knob here (`vector_cap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from compiler.schedule.stage import Attach, IterType
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    ComputeAt,
    ComputeInline,
    ComputeRoot,
    FollowSplit,
    Fuse,
    Pragma,
    ScheduleError,
    Split,
    Step,
)
from compiler.te.dag import batch_axes

UNROLL_STEPS = (0, 16, 64, 512)
MAX_INNERMOST = 64


@dataclass(frozen=True)
class AnnotateConfig:
    cores: int = 2
    vector_cap: int = 16
    max_innermost: int = MAX_INNERMOST


@cache
def factorizations(extent: int, parts: int, max_innermost: int) -> tuple[tuple[int, ...], ...]:
    """All (p0, ..., p_{parts-1}) with product == extent and p_last <= max_innermost."""
    if parts == 1:
        return ((extent,),) if extent <= max_innermost else ()
    out = []
    for d in _divisors(extent):
        for rest in factorizations(extent // d, parts - 1, max_innermost):
            out.append((d,) + rest)
    return tuple(out)


@cache
def _divisors(n: int) -> tuple[int, ...]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return tuple(sorted(set(small + [n // d for d in small])))


def random_factors(
    extent: int, n_factors: int, rng: np.random.Generator, cfg: AnnotateConfig
) -> tuple[int, ...]:
    """Inner factors of a split of `extent` into n_factors + 1 exact parts."""
    options = factorizations(extent, n_factors + 1, cfg.max_innermost)
    if not options:  # e.g. a prime extent > 64: give the innermost the largest legal divisor
        options = factorizations(extent, n_factors + 1, extent)
    return options[int(rng.integers(len(options)))][1:]


def fill_tile_sizes(sketch: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State:
    """Replay the sketch with every hole of every Split filled; a batch axis
    (`splits_batch_axis`) stays whole in its outermost part."""
    state = State.initial(sketch.dag)
    for step in sketch.steps:
        if isinstance(step, Split) and None in step.factors:
            extent = state.stages[step.stage].iters[step.iter].extent
            assert extent is not None
            n = len(step.factors)
            factors = (1,) * n if splits_batch_axis(state, step) else None
            step = Split(step.stage, step.iter, factors or random_factors(extent, n, rng, cfg))
        state = state.apply(step)
    return state


def splits_batch_axis(state: State, step: Split) -> bool:
    """Whether `step` (applied to `state`) splits one of its stage's batch axes
    (te/dag.py `batch_axes`: tiles along it share no data)."""
    stage = state.stages[step.stage]
    it = stage.iters[step.iter]
    roots = [r.uid for r in stage.root_iters]
    return it.uid in roots and roots.index(it.uid) in batch_axes(stage.op)


def change_compute_locations(s: State, rng: np.random.Generator) -> State:
    """Untiled, non-output stages go inline, to root or into their consumer's loops."""
    for k in reversed(range(len(s.stages))):
        st = s.stages[k]
        if st.is_placeholder or st.attach is not Attach.ROOT or s.is_output(k) or st.relations:
            continue
        if any(o.attach is Attach.AT and o.attach_target == k for o in s.stages):
            continue
        choices: list[Step] = [ComputeRoot(k)]
        if not st.op.reduce_axes:
            choices.append(ComputeInline(k))
        consumers = s.consumers(k)
        if len(consumers) == 1:
            c = consumers[0]
            for i in attach_candidates(s, c):
                choices.append(ComputeAt(k, c, i))
        step = choices[int(rng.integers(len(choices)))]
        if isinstance(step, ComputeRoot):
            continue
        try:
            s = s.apply(step)
        except ScheduleError:
            continue
    return s


def attach_candidates(s: State, c: int) -> list[int]:
    """Loops of stage c a producer may be computed in: the spatial loops outside its
    first reduction loop (inside a reduction the producer would be recomputed)."""
    out = []
    for i, it in enumerate(s.stages[c].iters):
        if it.type is not IterType.SPATIAL:
            break
        out.append(i)
    return out


def parallelize(s: State, cfg: AnnotateConfig, rng: np.random.Generator | None = None) -> State:
    """Fuse each root stage's outer spatial loops until 16 x cores jobs, mark parallel."""
    for k, st in enumerate(s.stages):
        if st.is_placeholder or st.attach is not Attach.ROOT:
            continue
        count = outer_fuse_count(s, k, 16 * cfg.cores)
        if rng is not None and count > 1 and rng.random() < 0.2:
            count = int(rng.integers(1, count + 1))  # sometimes coarser: fewer fused loops
        s = fuse_and_parallel(s, k, count)
    return s


def outer_fuse_count(s: State, k: int, jobs: int) -> int:
    """How many outermost spatial loops to fuse: until the product reaches `jobs`,
    stopping after a loop with attached stages."""
    st, product, count = s.stages[k], 1, 0
    attach_uids = {
        o.attach_iter for o in s.stages if o.attach is Attach.AT and o.attach_target == k
    }
    for it in st.iters:
        if it.type is not IterType.SPATIAL or it.annotation is not Annotation.NONE:
            break
        count += 1
        product *= it.extent or 1
        if product >= jobs or it.uid in attach_uids:
            break
    return count


def fuse_and_parallel(s: State, k: int, count: int) -> State:
    if count == 0:
        return s
    if count > 1:
        s = s.apply(Fuse(k, tuple(range(count))))
    if (s.stages[k].iters[0].extent or 1) > 1:
        s = s.apply(Annotate(k, 0, Annotation.PARALLEL))
    return s


def auto_unroll(s: State, rng: np.random.Generator) -> State:
    for k, st in enumerate(s.stages):
        if st.is_placeholder or st.attach is Attach.INLINE or not st.op.reduce_axes:
            continue
        value = UNROLL_STEPS[int(rng.integers(len(UNROLL_STEPS)))]
        if value:
            s = s.apply(Pragma(k, 0, "auto_unroll_max_step", value))
    return s


def vectorize(s: State, rng: np.random.Generator | None, cfg: AnnotateConfig) -> State:
    """Fuse a random count of innermost spatial loops (product <= cap) and vectorize
    (without `rng`: as many as the cap allows)."""
    for k, st in enumerate(s.stages):
        if st.is_placeholder or st.attach is Attach.INLINE:
            continue
        n = vector_candidates(s, k, cfg.vector_cap)
        if n == 0:
            s = _split_long_inner_loop(s, k, cfg.vector_cap)
            continue
        if rng is not None:
            n = int(rng.integers(1, n + 1))
        last = len(st.iters) - 1
        if n > 1:
            s = s.apply(Fuse(k, tuple(range(last - n + 1, last + 1))))
        s = s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))
    return s


def _split_long_inner_loop(s: State, k: int, cap: int) -> State:
    """An innermost spatial loop longer than the vector cap (e.g. a write-cache copy):
    split off a vector-sized inner part and vectorize that. (Ansor leaves it scalar.)"""
    st = s.stages[k]
    if not st.iters:
        return s
    it = st.iters[-1]
    attached = any(o.attach is Attach.AT and o.attach_target == k and o.attach_iter == it.uid
                   for o in s.stages)  # fmt: skip
    plain = it.type is IterType.SPATIAL and it.annotation is Annotation.NONE and not attached
    if not plain or it.extent is None or it.extent <= cap:
        return s
    lanes = max((d for d in _divisors(it.extent) if d <= cap), default=1)
    if lanes < 8:
        return s
    s = s.apply(Split(k, len(st.iters) - 1, (lanes,)))
    return s.apply(Annotate(k, len(s.stages[k].iters) - 1, Annotation.VECTORIZE))


def vector_candidates(s: State, k: int, cap: int) -> int:
    """How many innermost loops could be fused into one vector loop (0: none)."""
    st = s.stages[k]
    attach_uids = {
        o.attach_iter for o in s.stages if o.attach is Attach.AT and o.attach_target == k
    }
    tiled = any(r for r in st.relations) and bool(st.op.reduce_axes)
    product, n = 1, 0
    for it in reversed(st.iters):
        if it.type is not IterType.SPATIAL or it.annotation is not Annotation.NONE:
            break
        if it.uid in attach_uids or product * (it.extent or 1) > cap:
            break
        product *= it.extent or 1
        n += 1
        if tiled:
            break
    return n if product > 1 else 0


def sample_state(sketch: State, rng: np.random.Generator, cfg: AnnotateConfig) -> State | None:
    """One random complete program from `sketch`, or None if a choice was illegal."""
    try:
        s = fill_tile_sizes(sketch, rng, cfg)
        s = change_compute_locations(s, rng)
        s = parallelize(s, cfg, rng)
        s = auto_unroll(s, rng)
        return vectorize(s, rng, cfg)
    except ScheduleError:
        return None


def sample_population(
    sketches: list[State],
    n: int,
    rng: np.random.Generator,
    cfg: AnnotateConfig,
    origin: dict[tuple[Step, ...], int] | None = None,
) -> list[State]:
    """Up to n distinct complete programs drawn uniformly over the sketches;
    `origin`, when given, gets each program's sketch index."""
    out: dict[tuple[Step, ...], State] = {}
    for _ in range(n * 2):
        if len(out) >= n:
            break
        k = int(rng.integers(len(sketches)))
        s = sample_state(sketches[k], rng, cfg)
        if s is not None:
            out.setdefault(s.steps, s)
            if origin is not None:
                origin.setdefault(s.steps, k)
    return list(out.values())


__all__ = ["AnnotateConfig", "FollowSplit", "sample_population", "sample_state"]
