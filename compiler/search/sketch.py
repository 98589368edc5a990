"""Sketch generation: Ansor's derivation rules for the CPU (docs/search.md#sketch-rules).

A sketch is a State whose split factors are holes (None). Derivation starts at
the last stage and walks towards the inputs; at each (state, stage) every rule
answers SKIP, APPLY (its results join the next frontier and later rules still
see the original state: a branch) or APPLY_AND_SKIP_REST. A state is finished
when the cursor passes the first stage. Rules are small objects in a list;
`register_rule` adds a user's rule.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass

from compiler.schedule.analysis import (
    blocked_consumer,
    const_axes,
    elementwise_consumer,
    needs_tiling,
    should_inline,
    wants_rfactor,
)
from compiler.schedule.stage import IterType
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    FollowSplit,
    Fuse,
    PackLayout,
    Reorder,
    Rfactor,
    ScheduleError,
    Split,
)
from compiler.te.dag import ComputeDAG
from compiler.te.expr import TensorRead
from compiler.te.traverse import walk


class Cond(enum.Enum):
    SKIP = "skip"
    APPLY = "apply"
    APPLY_AND_SKIP_REST = "apply_and_skip_rest"


@dataclass(frozen=True)
class SketchContext:
    cores: int


Transition = list[tuple[State, int]]  # (new state, next stage to visit)


@dataclass(frozen=True)
class SketchRule:
    name: str
    condition: Callable[[SketchContext, State, int], Cond]
    apply: Callable[[SketchContext, State, int], Transition]


# ---------------------------------------------------------------- tiling


TILE_STRUCTURE = "SSRSRS"  # each spatial loop in 4 parts, each reduction loop in 2


def multi_level_tile(s: State, k: int) -> tuple[State, list[int]]:
    """Tile stage k as S0 S1 R0 S2 R1 S3; returns the state and, per spatial axis,
    the index of its Split step (for consumers to follow)."""
    iters = s.stages[k].iters
    parts = {
        IterType.SPATIAL: TILE_STRUCTURE.count("S"),
        IterType.REDUCE: TILE_STRUCTURE.count("R"),
    }
    split_steps: dict[int, int] = {}
    for i in reversed(range(len(iters))):  # right to left keeps earlier positions valid
        n = parts[iters[i].type]
        split_steps[i] = len(s.steps)
        s = s.apply(Split(k, i, (None,) * (n - 1)))
    # positions of part p of original iter i after all splits
    pos, offset = {}, 0
    for i, it in enumerate(iters):
        for p in range(parts[it.type]):
            pos[(i, p)] = offset + p
        offset += parts[it.type]
    spatial = [i for i, it in enumerate(iters) if it.type is IterType.SPATIAL]
    reduce = [i for i, it in enumerate(iters) if it.type is IterType.REDUCE]
    order: list[int] = []
    counters = {"S": 0, "R": 0}
    for kind in TILE_STRUCTURE:
        axes = spatial if kind == "S" else reduce
        order.extend(pos[(i, counters[kind])] for i in axes)
        counters[kind] += 1
    s = s.apply(Reorder(k, tuple(order)))
    return s, [split_steps[i] for i in spatial]


PANEL_LEVEL = 2  # a packed panel spans the innermost two spatial tile levels (S2 x S3)


def pack_variants(s: State, k: int, split_steps: list[int]) -> list[State]:
    """`s`, plus `s` reading each packable input of stage k in panel layout."""
    out = [s]
    op = s.stages[k].op
    if not op.axes:
        return out
    last = op.axes[-1].var
    for i, x in enumerate(op.inputs):
        reads = [n for n in walk(op.body) if isinstance(n, TensorRead) and n.tensor is x]
        if x.is_placeholder and reads and all(last in r.indices for r in reads):
            try:
                out.append(s.apply(PackLayout(k, i, split_steps[-1], PANEL_LEVEL)))
            except ScheduleError:
                continue
    return out


def tile_with_fusion(s: State, k: int, consumer: int, level: int) -> tuple[State, list[int]]:
    """Tile k, split the consumer's spatial loops following k's outer `level` tile
    levels, and compute k inside the consumer's last level-`level` loop."""
    s, split_steps = multi_level_tile(s, k)
    n = len(split_steps)
    for i in reversed(range(n)):
        s = s.apply(FollowSplit(consumer, i, split_steps[i], level + 1))
    per_axis = level + 1
    order = [axis * per_axis + p for p in range(per_axis) for axis in range(n)]
    s = s.apply(Reorder(consumer, tuple(order)))
    return s.apply(ComputeAt(k, consumer, level * n - 1)), split_steps


def tile_into_blocked(s: State, k: int, consumer: int, level: int) -> State:
    """Tile the blocked conv k [N, F/b, OH, OW, b] and compute it inside the consumer
    that reads it back as [N, F, OH, OW], at tile level `level`: the consumer's F is
    split into blocks of b, then N, the block index, OH and OW follow the conv's
    outer `level` tile levels of N, F/b, OH and OW. The conv's b axis is not
    followed: each of the consumer's tiles holds whole blocks (the default
    schedule's register tile, compiler/schedule/default.py, is one point of this).
    """
    s, split_steps = multi_level_tile(s, k)  # per spatial axis: n, fo, y, x, fi
    block = s.stages[k].op.shape[-1]
    s = s.apply(Split(consumer, 1, (block,)))  # [n, f.o, f.i, y, x]
    parts = level + 1
    for it, axis in ((4, 3), (3, 2), (1, 1), (0, 0)):  # right to left keeps positions
        s = s.apply(FollowSplit(consumer, it, split_steps[axis], parts))
    n, fo, fi = 0, parts, 2 * parts  # first loop of each consumer axis after the splits
    y, x = fi + 1, fi + 1 + parts
    tiles = [axis + p for p in range(level) for axis in (n, fo, y, x)]
    inner = [n + level, fo + level, fi, y + level, x + level]
    s = s.apply(Reorder(consumer, tuple(tiles + inner)))
    return s.apply(ComputeAt(k, consumer, 4 * level - 1))


# ----------------------------------------------------------------- rules


def _always_inline(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY_AND_SKIP_REST if should_inline(s, k) else Cond.SKIP


def _apply_inline(ctx: SketchContext, s: State, k: int) -> Transition:
    return [(s.apply(ComputeInline(k)), k - 1)]


def _const_tensor_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY_AND_SKIP_REST if const_axes(s, k) else Cond.SKIP


def _apply_const_tensor(ctx: SketchContext, s: State, k: int) -> Transition:
    """Unroll the constant axes; tile the others in two levels around them:
    [outer tiles..., constant axes (unrolled)..., inner tiles...]."""
    consts = const_axes(s, k)
    n = len(s.stages[k].iters)
    others = [i for i in range(n) if i not in consts]
    for i in reversed(others):  # right to left keeps earlier positions valid
        s = s.apply(Split(k, i, (None,)))
    pos, offset = {}, 0  # original axis -> first position after the splits
    for i in range(n):
        pos[i] = offset
        offset += 1 if i in consts else 2
    order = [pos[i] for i in others] + [pos[i] for i in consts] + [pos[i] + 1 for i in others]
    s = s.apply(Reorder(k, tuple(order)))
    for j in range(len(others), len(others) + len(consts)):
        s = s.apply(Annotate(k, j, Annotation.UNROLL))
    return [(s, k - 1)]


def _rfactor_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY if wants_rfactor(s, k, ctx.cores) else Cond.SKIP


def _apply_rfactor(ctx: SketchContext, s: State, k: int) -> Transition:
    iters = s.stages[k].iters
    red = [i for i, it in enumerate(iters) if it.type is IterType.REDUCE]
    if len(red) > 1:
        s = s.apply(Fuse(k, tuple(red)))
    r = next(i for i, it in enumerate(s.stages[k].iters) if it.type is IterType.REDUCE)
    s = s.apply(Split(k, r, (None,)))
    # outer part factored out (a parallel/vector axis of partial sums), or the inner part
    return [(_factored_innermost(s.apply(Rfactor(k, part)), k), k - 1) for part in (r, r + 1)]


def _factored_innermost(s: State, k: int) -> State:
    """Move the new stage's factored axis (its last spatial one) behind the rest of
    the reduction, so that it is the innermost loop and can be vectorized."""
    iters = s.stages[k].iters
    spatial = [i for i, it in enumerate(iters) if it.type is not IterType.REDUCE]
    rest = [i for i in range(len(iters)) if i != spatial[-1]]
    order = (*rest, spatial[-1])
    return s if order == tuple(range(len(iters))) else s.apply(Reorder(k, order))


def _cache_write_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    if needs_tiling(s, k) and elementwise_consumer(s, k) is None:
        return Cond.APPLY
    return Cond.SKIP


def _apply_cache_write(ctx: SketchContext, s: State, k: int) -> Transition:
    return [(s.apply(CacheWrite(k)), k)]  # k is now the local stage; its copy consumes it


def _fusion_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    if needs_tiling(s, k) and elementwise_consumer(s, k) is not None:
        return Cond.APPLY_AND_SKIP_REST
    return Cond.SKIP


def _apply_fusion(ctx: SketchContext, s: State, k: int) -> Transition:
    c = elementwise_consumer(s, k)
    assert c is not None
    out: Transition = []
    for level in (1, 2):
        tiled, split_steps = tile_with_fusion(s, k, c, level)
        out.extend((v, k - 1) for v in pack_variants(tiled, k, split_steps))
    return out


def _blocked_fusion_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY if needs_tiling(s, k) and blocked_consumer(s, k) is not None else Cond.SKIP


def _apply_blocked_fusion(ctx: SketchContext, s: State, k: int) -> Transition:
    c = blocked_consumer(s, k)
    assert c is not None
    return [(tile_into_blocked(s, k, c, level), k - 1) for level in (1, 2)]


def _tiling_cond(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY_AND_SKIP_REST if needs_tiling(s, k) else Cond.SKIP


def _apply_tiling(ctx: SketchContext, s: State, k: int) -> Transition:
    tiled, split_steps = multi_level_tile(s, k)
    return [(v, k - 1) for v in pack_variants(tiled, k, split_steps)]


def _always(ctx: SketchContext, s: State, k: int) -> Cond:
    return Cond.APPLY


def _skip(ctx: SketchContext, s: State, k: int) -> Transition:
    return [(s, k - 1)]


RULES: list[SketchRule] = [
    SketchRule("always_inline", _always_inline, _apply_inline),  # injective: inline, done
    # constant-matrix transforms (Winograd): unroll the constant axes, tile the rest
    SketchRule("simplify_const_tensor", _const_tensor_cond, _apply_const_tensor),
    SketchRule("add_rfactor", _rfactor_cond, _apply_rfactor),  # little parallelism: branch
    SketchRule("add_cache_write", _cache_write_cond, _apply_cache_write),  # branch: local tile
    SketchRule("multi_level_tiling_with_fusion", _fusion_cond, _apply_fusion),  # levels 1, 2
    # a blocked conv computed in the stage reading it back as NCHW, levels 1, 2 (branch)
    SketchRule("multi_level_tiling_with_unblocking", _blocked_fusion_cond, _apply_blocked_fusion),
    SketchRule("multi_level_tiling", _tiling_cond, _apply_tiling),  # SSRSRS
    SketchRule("skip_stage", _always, _skip),
]


def register_rule(rule: SketchRule, before: str | None = "skip_stage") -> None:
    """Add a user's rule to the default list (before the named rule, or last)."""
    names = [r.name for r in RULES]
    RULES.insert(names.index(before) if before in names else len(RULES), rule)


def generate_sketches(
    dag: ComputeDAG, *, cores: int | None = None, rules: list[SketchRule] | None = None
) -> list[State]:
    """Every sketch the rules derive for `dag`, in derivation order."""
    ctx = SketchContext(cores or os.cpu_count() or 1)
    rules = RULES if rules is None else rules
    start = State.initial(dag)
    frontier: list[tuple[State, int]] = [(start, len(start.stages) - 1)]
    done: list[State] = []
    while frontier:
        nxt: list[tuple[State, int]] = []
        for state, k in frontier:
            if k < 0:
                done.append(state)
                continue
            if state.stages[k].is_placeholder:
                nxt.append((state, k - 1))
                continue
            for rule in rules:
                cond = rule.condition(ctx, state, k)
                if cond is Cond.SKIP:
                    continue
                nxt.extend(rule.apply(ctx, state, k))
                if cond is Cond.APPLY_AND_SKIP_REST:
                    break
        frontier = nxt
    return _dedupe(done)


def _dedupe(states: list[State]) -> list[State]:
    seen, out = set(), []
    for s in states:
        key = tuple(s.steps)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
