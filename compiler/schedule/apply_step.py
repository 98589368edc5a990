"""The effect of each schedule step on a state's stages: the legality checks, then the
new stages (`apply_step`, which `State.apply` calls)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from math import prod
from typing import TYPE_CHECKING

from compiler.schedule import transforms
from compiler.schedule.stage import Attach, FuseRel, Iter, IterType, SplitRel, Stage, stage_from_op
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    ComputeRoot,
    FollowSplit,
    Fuse,
    PackLayout,
    Pragma,
    Reorder,
    Rfactor,
    ScheduleError,
    Split,
    Step,
)
from compiler.te.tensor import Tensor

if TYPE_CHECKING:
    from compiler.schedule.state import State


def apply_step(state: State, step: Step) -> tuple[Stage, ...]:
    """The stages of `state` after `step` (ScheduleError if the step is illegal)."""
    return _APPLY[type(step)](state, step)


def _replace_stage(state: State, k: int, new: Stage) -> tuple[Stage, ...]:
    return state.stages[:k] + (new,) + state.stages[k + 1 :]


def _check_iter(stage: Stage, i: int) -> Iter:
    if not 0 <= i < len(stage.iters):
        raise ScheduleError(f"stage {stage.name} has {len(stage.iters)} loops, no loop {i}")
    return stage.iters[i]


def _move_attached(
    stages: Sequence[Stage], target: int, old: Iterable[int], new: int
) -> list[Stage]:
    olds = set(old)
    return [
        replace(s, attach_iter=new)
        if s.attach is Attach.AT and s.attach_target == target and s.attach_iter in olds
        else s
        for s in stages
    ]


def _split_stage(stage: Stage, i: int, factors: tuple[int | None, ...]) -> tuple[Stage, int]:
    it = _check_iter(stage, i)
    if not factors:
        raise ScheduleError("a split needs at least one factor")
    if any(f is not None and (not isinstance(f, int) or f <= 0) for f in factors):
        raise ScheduleError(f"split factors must be positive integers, got {list(factors)}")
    if it.annotation is not Annotation.NONE:
        raise ScheduleError(f"loop {it.name} is already annotated {it.annotation.value}")
    known = None not in factors and it.extent is not None
    inner = prod(f for f in factors if f is not None)
    outer = -(-it.extent // inner) if known and it.extent is not None else None
    extents = (outer,) + tuple(factors)
    uids = tuple(range(stage.next_uid, stage.next_uid + len(extents)))
    kids = tuple(
        Iter(u, f"{it.name}.{n}", e, it.type) for n, (u, e) in enumerate(zip(uids, extents))
    )
    iters = stage.iters[:i] + kids + stage.iters[i + 1 :]
    rel = SplitRel(it.uid, uids, tuple(factors))
    new = replace(stage, iters=iters, relations=stage.relations + (rel,), next_uid=uids[-1] + 1)
    return new, uids[-1]


def _apply_split(state: State, step: Split | FollowSplit) -> tuple[Stage, ...]:
    factors = step.factors if isinstance(step, Split) else _follow_factors(state, step)
    stage = state.stages[step.stage]
    old_uid = _check_iter(stage, step.iter).uid
    new, inner_uid = _split_stage(stage, step.iter, tuple(factors))
    stages = list(_replace_stage(state, step.stage, new))
    return tuple(_move_attached(stages, step.stage, [old_uid], inner_uid))


def _follow_factors(state: State, step: FollowSplit) -> tuple[int | None, ...]:
    if not 0 <= step.src_step < len(state.steps):
        raise ScheduleError(f"no step {step.src_step} to follow")
    src = state.steps[step.src_step]
    if isinstance(src, FollowSplit):
        src_factors = _follow_factors(state, src)
    elif isinstance(src, Split):
        src_factors = src.factors
    else:
        raise ScheduleError(f"step {step.src_step} is not a split")
    n = step.parts - 1
    if not 1 <= n <= len(src_factors):
        raise ScheduleError(f"cannot follow {len(src_factors) + 1} parts with {step.parts}")
    keep = src_factors[: n - 1]
    rest = src_factors[n - 1 :]
    merged = None if None in rest else prod(f for f in rest if f is not None)
    return tuple(keep) + (merged,)


def _apply_fuse(state: State, step: Fuse) -> tuple[Stage, ...]:
    stage = state.stages[step.stage]
    idx = list(step.iters)
    if len(idx) < 2 or idx != list(range(idx[0], idx[0] + len(idx))):
        raise ScheduleError("fused loops must be two or more consecutive loops")
    its = [_check_iter(stage, i) for i in idx]
    if any(it.annotation is not Annotation.NONE for it in its):
        raise ScheduleError("cannot fuse annotated loops")
    types = {it.type for it in its}
    if len(types) > 1:
        raise ScheduleError("cannot fuse spatial and reduction loops together")
    extent = None if any(it.extent is None for it in its) else prod(it.extent for it in its)
    uid = stage.next_uid
    fused = Iter(uid, "@".join(it.name for it in its), extent, types.pop())
    iters = stage.iters[: idx[0]] + (fused,) + stage.iters[idx[-1] + 1 :]
    rel = FuseRel(tuple(it.uid for it in its), uid)
    new = replace(stage, iters=iters, relations=stage.relations + (rel,), next_uid=uid + 1)
    stages = list(_replace_stage(state, step.stage, new))
    return tuple(_move_attached(stages, step.stage, [it.uid for it in its], uid))


def _apply_reorder(state: State, step: Reorder) -> tuple[Stage, ...]:
    stage = state.stages[step.stage]
    if sorted(step.order) != list(range(len(stage.iters))):
        raise ScheduleError(f"order must be a permutation of 0..{len(stage.iters) - 1}")
    iters = tuple(stage.iters[i] for i in step.order)
    return _replace_stage(state, step.stage, replace(stage, iters=iters))


def _apply_compute_at(state: State, step: ComputeAt) -> tuple[Stage, ...]:
    k, stage = step.stage, state.stages[step.stage]
    if state.is_output(k):
        raise ScheduleError(f"{stage.name} is an output and must be computed at root")
    if not 0 <= step.target < len(state.stages) or step.target == k:
        raise ScheduleError(f"no valid target stage {step.target}")
    target = state.stages[step.target]
    consumers = state.consumers(k)
    others = [c for c in consumers if c != step.target]
    if step.target not in consumers or not all(
        state.computed_inside(c, step.target, step.target_iter) for c in others
    ):
        names = [state.stages[c].name for c in consumers]
        raise ScheduleError(
            f"{target.name} must be the only consumer of {stage.name}, or the others computed "
            f"inside its loop {step.target_iter}: {names}"
        )
    if target.attach is Attach.INLINE:
        raise ScheduleError(f"target {target.name} is inlined")
    it = _check_iter(target, step.target_iter)
    new = replace(stage, attach=Attach.AT, attach_target=step.target, attach_iter=it.uid)
    return _replace_stage(state, k, new)


def _apply_compute_inline(state: State, step: ComputeInline) -> tuple[Stage, ...]:
    k, stage = step.stage, state.stages[step.stage]
    if state.is_output(k):
        raise ScheduleError(f"{stage.name} is an output and cannot be inlined")
    if stage.op.reduce_axes:
        raise ScheduleError(f"{stage.name} has a reduction and cannot be inlined")
    if any(s.attach is Attach.AT and s.attach_target == k for s in state.stages):
        raise ScheduleError(f"stages are computed inside {stage.name}")
    return _replace_stage(state, k, replace(stage, attach=Attach.INLINE))


def _apply_compute_root(state: State, step: ComputeRoot) -> tuple[Stage, ...]:
    stage = state.stages[step.stage]
    return _replace_stage(state, step.stage, replace(stage, attach=Attach.ROOT))


def _apply_annotate(state: State, step: Annotate) -> tuple[Stage, ...]:
    stage = state.stages[step.stage]
    it = _check_iter(stage, step.iter)
    ann = step.annotation
    if ann in (Annotation.PARALLEL, Annotation.VECTORIZE) and it.type is not IterType.SPATIAL:
        raise ScheduleError(f"{ann.value} needs a spatial loop; {it.name} is a reduction")
    if it.annotation is not Annotation.NONE and ann is not Annotation.NONE:
        raise ScheduleError(f"loop {it.name} is already annotated {it.annotation.value}")
    new_it = replace(it, annotation=ann)
    iters = stage.iters[: step.iter] + (new_it,) + stage.iters[step.iter + 1 :]
    return _replace_stage(state, step.stage, replace(stage, iters=iters))


def _apply_pragma(state: State, step: Pragma) -> tuple[Stage, ...]:
    stage = state.stages[step.stage]
    _check_iter(stage, step.iter)
    if step.name != "auto_unroll_max_step":
        raise ScheduleError(f"unknown pragma {step.name!r}; known: auto_unroll_max_step")
    if not isinstance(step.value, int) or step.value < 0:
        raise ScheduleError("auto_unroll_max_step must be a non-negative integer")
    return _replace_stage(state, step.stage, replace(stage, auto_unroll_max_step=step.value))


def _insert_before(state: State, k: int, new_stage: Stage, replaced: Stage) -> tuple[Stage, ...]:
    """Put `new_stage` at index k and `replaced` at k+1; shift attach targets."""
    if any(s.attach is Attach.AT and s.attach_target == k for s in state.stages):
        raise ScheduleError(f"stages are computed inside {state.stages[k].name}; do this first")

    def shift(s: Stage) -> Stage:
        if s.attach is Attach.AT and s.attach_target >= k:
            return replace(s, attach_target=s.attach_target + 1)
        return s

    shifted = [shift(s) for s in state.stages]
    return tuple(shifted[:k]) + (new_stage, shift(replaced)) + tuple(shifted[k + 1 :])


def _successor(stage: Stage, op: Tensor) -> Stage:
    """A fresh stage computing `op` in `stage`'s place: same output, same location."""
    return replace(
        stage_from_op(op, stage.output),
        attach=stage.attach,
        attach_target=stage.attach_target,
        attach_iter=stage.attach_iter,
    )


def _apply_cache_write(state: State, step: CacheWrite) -> tuple[Stage, ...]:
    k, stage = step.stage, state.stages[step.stage]
    if stage.relations or any(it.annotation is not Annotation.NONE for it in stage.iters):
        raise ScheduleError("cache_write must come before other steps on the stage")
    if stage.attach is Attach.INLINE:
        raise ScheduleError(f"{stage.name} is inlined")
    local, copy = transforms.cache_write(stage.op)
    return _insert_before(state, k, stage_from_op(local), _successor(stage, copy))


def _apply_rfactor(state: State, step: Rfactor) -> tuple[Stage, ...]:
    k, stage = step.stage, state.stages[step.stage]
    it = _check_iter(stage, step.iter)
    if it.type is not IterType.REDUCE:
        raise ScheduleError(f"loop {it.name} is not a reduction loop")
    if any(x.annotation is not Annotation.NONE for x in stage.iters):
        raise ScheduleError("rfactor must come before annotations")
    split = next(
        (r for r in stage.relations if isinstance(r, SplitRel) and it.uid in r.children), None
    )
    if split is None or len(split.children) != 2:
        raise ScheduleError(f"loop {it.name} must come from a two-way split of the reduction")
    reduce_roots = [r.uid for r in stage.root_iters if r.type is IterType.REDUCE]
    fused = next(
        (r for r in stage.relations if isinstance(r, FuseRel) and r.child == split.parent), None
    )
    source = list(fused.parents) if fused else [split.parent]
    if source != reduce_roots:
        raise ScheduleError("rfactor needs the whole reduction fused (in order) then split")
    other = {split.parent, *split.children, *(fused.parents if fused else ())}
    for rel in stage.relations:
        touched = (
            {rel.parent, *rel.children} if isinstance(rel, SplitRel) else {*rel.parents, rel.child}
        )
        if rel is not split and rel is not fused and touched & other:
            raise ScheduleError("rfactor needs the reduction split exactly once")
    factor_is_inner = split.children[1] == it.uid
    # a sketch's hole gets a provisional factor: the loop structure does not depend on it,
    # and filling the hole replays the steps, which rebuilds the stages with the real one
    factor = split.factors[0] if split.factors[0] is not None else 1
    rf, combine = transforms.rfactor(stage.op, factor, factor_is_inner)
    return _insert_before(state, k, stage_from_op(rf), _successor(stage, combine))


def _apply_pack_layout(state: State, step: PackLayout) -> tuple[Stage, ...]:
    k, stage = step.stage, state.stages[step.stage]
    inputs = stage.op.inputs
    if not 0 <= step.input < len(inputs) or not inputs[step.input].is_placeholder:
        raise ScheduleError(f"stage {stage.name} has no input #{step.input} that is a tensor input")
    if not 0 <= step.split_step < len(state.steps) or not isinstance(
        state.steps[step.split_step], (Split, FollowSplit)
    ):
        raise ScheduleError(f"step {step.split_step} is not a split")
    src = state.steps[step.split_step]
    factors = src.factors if isinstance(src, Split) else _follow_factors(state, src)
    if not 1 <= step.level <= len(factors):
        raise ScheduleError(f"level must be in 1..{len(factors)}, got {step.level}")
    # a sketch's hole gets a provisional panel of 1; filling it replays with the real one
    panel = prod(f if f is not None else 1 for f in factors[step.level - 1 :])
    spatial = [a for a in stage.op.axes]
    if not spatial:
        raise ScheduleError(f"stage {stage.name} has no spatial axis")
    try:
        packed, new_op = transforms.pack_layout(
            stage.op, inputs[step.input], spatial[-1].var, panel
        )
    except ValueError as err:
        raise ScheduleError(str(err)) from None
    rewritten = replace(stage, op=new_op)
    return _insert_before(state, k, stage_from_op(packed), rewritten)


_APPLY = {
    Split: _apply_split,
    FollowSplit: _apply_split,
    Fuse: _apply_fuse,
    Reorder: _apply_reorder,
    ComputeAt: _apply_compute_at,
    ComputeInline: _apply_compute_inline,
    ComputeRoot: _apply_compute_root,
    CacheWrite: _apply_cache_write,
    Rfactor: _apply_rfactor,
    PackLayout: _apply_pack_layout,
    Annotate: _apply_annotate,
    Pragma: _apply_pragma,
}
