"""Schedule state: per stage, its loop iterators, how they derive from the
compute axes, and where the stage is computed. A State is fully determined by
(DAG, step list); `State.replay` rebuilds it from records.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from math import prod

from compiler.schedule import transforms
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
from compiler.te.dag import ComputeDAG
from compiler.te.expr import Expr, TensorRead
from compiler.te.tensor import Tensor
from compiler.te.traverse import children, rebuild, substitute


class IterType(enum.Enum):
    SPATIAL = "S"
    REDUCE = "R"
    MIXED = "M"


@dataclass(frozen=True)
class Iter:
    uid: int
    name: str
    extent: int | None  # None while a split factor is still a hole
    type: IterType
    annotation: Annotation = Annotation.NONE


@dataclass(frozen=True)
class SplitRel:
    parent: int
    children: tuple[int, ...]
    factors: tuple[int | None, ...]


@dataclass(frozen=True)
class FuseRel:
    parents: tuple[int, ...]
    child: int


Relation = SplitRel | FuseRel


class Attach(enum.Enum):
    ROOT = "root"
    INLINE = "inline"
    AT = "at"


@dataclass(frozen=True)
class Stage:
    """One stage of the program. `op` defines it (axes and body); `output` is
    the tensor its consumers read (differs from `op` after cache_write/rfactor)."""

    op: Tensor
    output: Tensor
    root_iters: tuple[Iter, ...]
    iters: tuple[Iter, ...]
    relations: tuple[Relation, ...] = ()
    attach: Attach = Attach.ROOT
    attach_target: int = -1
    attach_iter: int = -1  # uid of the target stage's iterator
    auto_unroll_max_step: int = 0
    next_uid: int = 0

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def is_placeholder(self) -> bool:
        return self.op.is_placeholder

    def iter_by_uid(self, uid: int) -> Iter | None:
        return next((it for it in self.iters if it.uid == uid), None)

    def iter_index(self, uid: int) -> int:
        for k, it in enumerate(self.iters):
            if it.uid == uid:
                return k
        raise KeyError(uid)


def stage_from_op(op: Tensor, output: Tensor | None = None) -> Stage:
    """A fresh stage: one iterator per compute axis, spatial then reduce."""
    roots = [Iter(k, a.var.name, a.extent, IterType.SPATIAL) for k, a in enumerate(op.axes)]
    for a in op.reduce_axes:
        roots.append(Iter(len(roots), a.var.name, a.extent, IterType.REDUCE))
    return Stage(op, output or op, tuple(roots), tuple(roots), next_uid=len(roots))


class State:
    """An immutable schedule: the DAG, its stages, and the steps that made them."""

    def __init__(self, dag: ComputeDAG, stages: tuple[Stage, ...], steps: tuple[Step, ...]):
        self.dag = dag
        self.stages = stages
        self.steps = steps

    @classmethod
    def initial(cls, dag: ComputeDAG) -> State:
        return cls(dag, tuple(stage_from_op(t) for t in dag.tensors), ())

    @classmethod
    def replay(cls, dag: ComputeDAG, steps: Iterable[Step]) -> State:
        state = cls.initial(dag)
        for s in steps:
            state = state.apply(s)
        return state

    def apply(self, step: Step) -> State:
        """A new state with `step` applied; ScheduleError if it is illegal."""
        if not 0 <= step.stage < len(self.stages):
            raise ScheduleError(f"{step.describe()}: no stage {step.stage}")
        stage = self.stages[step.stage]
        if stage.is_placeholder:
            raise ScheduleError(f"{step.describe()}: stage {stage.name} is an input")
        try:
            stages = _APPLY[type(step)](self, step)
        except ScheduleError as err:
            msg = str(err)
            raise ScheduleError(
                msg if msg.startswith(step.describe()) else f"{step.describe()}: {msg}"
            ) from None
        return State(self.dag, stages, self.steps + (step,))

    def stage_index(self, name: str) -> int:
        for k, s in enumerate(self.stages):
            if s.name == name:
                return k
        raise KeyError(name)

    @cached_property
    def readers(self) -> dict[int, tuple[int, ...]]:
        """Stage index -> stages whose op body reads its output directly."""
        by_id = self.stage_of
        out: dict[int, list[int]] = {k: [] for k in range(len(self.stages))}
        for k, s in enumerate(self.stages):
            for t in s.op.inputs:  # (each op's reads are found once, not per state)
                j = by_id.get(id(t))
                if j is not None and k not in out[j]:
                    out[j].append(k)
        return {k: tuple(v) for k, v in out.items()}

    def consumers(self, k: int) -> tuple[int, ...]:
        """Stages that read stage k, looking through inlined stages."""
        out: list[int] = []
        for c in self.readers[k]:
            if self.stages[c].attach is Attach.INLINE:
                out.extend(x for x in self.consumers(c) if x not in out)
            elif c not in out:
                out.append(c)
        return tuple(out)

    def body(self, k: int) -> Expr:
        """Stage k's body with every read of an inlined stage expanded in place."""
        cache = self.__dict__.setdefault("_bodies", {})
        if k not in cache:
            op = self.stages[k].op
            assert op.body is not None, f"stage {self.stages[k].name} is an input"
            inlines = any(self._is_inlined(t) for t in op.inputs)
            cache[k] = self._expand(op.body) if inlines else op.body
        return cache[k]

    def _is_inlined(self, t: Tensor) -> bool:
        j = self.stage_of.get(id(t))
        return j is not None and self.stages[j].attach is Attach.INLINE

    def _expand(self, e: Expr) -> Expr:
        if isinstance(e, TensorRead):
            idx = tuple(self._expand(i) for i in e.indices)
            if self._is_inlined(e.tensor):
                j = self.stage_of[id(e.tensor)]
                op = self.stages[j].op
                return substitute(self.body(j), {a.var: i for a, i in zip(op.axes, idx)})
            same = all(a is b for a, b in zip(e.indices, idx))
            return e if same else TensorRead(e.tensor, idx)
        kids = children(e)
        if not kids:
            return e
        new = tuple(self._expand(c) for c in kids)
        return e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)

    @cached_property
    def stage_of(self) -> dict[int, int]:
        """id(tensor read by consumers) -> stage index."""
        return {id(s.output): k for k, s in enumerate(self.stages)}

    def is_output(self, k: int) -> bool:
        return any(self.stages[k].output is o for o in self.dag.outputs)

    @property
    def is_complete(self) -> bool:
        """Every split factor is known (no holes): the state can be lowered."""
        return all(
            f is not None
            for s in self.stages
            for r in s.relations
            if isinstance(r, SplitRel)
            for f in r.factors
        )

    def __str__(self) -> str:
        from compiler.schedule.printer import format_state

        return format_state(self)


# ------------------------------------------------------------------- steps


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
    if consumers != (step.target,):
        names = [state.stages[c].name for c in consumers]
        raise ScheduleError(f"{target.name} must be the only consumer of {stage.name}: {names}")
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
