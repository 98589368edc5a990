"""A stage of a schedule: its loop iterators, how they derive from the compute axes
(split and fuse relations), and where the stage is computed (root, inlined, or at a
loop of another stage)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from compiler.schedule.steps import Annotation
from compiler.te.tensor import Tensor


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
