"""Schedule transform steps: frozen records, replayed onto a ComputeDAG's state.

A schedule is a list of these. Stages and iterators are named by position
(stage index in the state, iterator index in the stage's current loop order),
as in Ansor's `transform_steps`; `to_json` / `from_json` give the record form.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar


class ScheduleError(ValueError):
    """An illegal step: the message names the step and the reason."""


class Annotation(enum.Enum):
    NONE = "none"
    PARALLEL = "parallel"
    VECTORIZE = "vectorize"
    UNROLL = "unroll"


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str] = ""
    stage: int

    def to_json(self) -> dict:
        out = {"kind": self.kind}
        for k, v in asdict(self).items():
            out[k] = v.value if isinstance(v, enum.Enum) else list(v) if isinstance(v, tuple) else v
        return out

    def describe(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class Split(Step):
    """Split iterator `iter` into len(factors)+1 loops; factors are the inner extents,
    outer to inner (None = a hole to be filled). Non-dividing factors get guards."""

    kind: ClassVar[str] = "split"
    iter: int
    factors: tuple[int | None, ...]


@dataclass(frozen=True)
class FollowSplit(Step):
    """Split `iter` into `parts` loops following step `src_step` (a Split): its
    outer parts-2 factors, then the product of the rest (Ansor's FollowSplit), so a
    consumer tiled at level L matches its producer's outer L tile levels."""

    kind: ClassVar[str] = "follow_split"
    iter: int
    src_step: int
    parts: int


@dataclass(frozen=True)
class Fuse(Step):
    """Fuse consecutive iterators `iters` (outer to inner) into one."""

    kind: ClassVar[str] = "fuse"
    iters: tuple[int, ...]


@dataclass(frozen=True)
class Reorder(Step):
    """Put the stage's iterators in the order `order` (a permutation)."""

    kind: ClassVar[str] = "reorder"
    order: tuple[int, ...]


@dataclass(frozen=True)
class ComputeAt(Step):
    """Compute the stage inside loop `target_iter` of its consumer `target`."""

    kind: ClassVar[str] = "compute_at"
    target: int
    target_iter: int


@dataclass(frozen=True)
class ComputeInline(Step):
    kind: ClassVar[str] = "compute_inline"


@dataclass(frozen=True)
class ComputeRoot(Step):
    kind: ClassVar[str] = "compute_root"


@dataclass(frozen=True)
class CacheWrite(Step):
    """Compute the stage into a new local stage (inserted before it); the stage
    becomes a copy of it. Stage indices from `stage` on shift by one."""

    kind: ClassVar[str] = "cache_write"


@dataclass(frozen=True)
class Rfactor(Step):
    """Factor the reduction: a new stage (inserted before) reduces over all but
    reduce iterator `iter`, which becomes its innermost spatial axis; the stage
    then reduces over that axis. `iter` must come from one split of the
    (fused) reduction."""

    kind: ClassVar[str] = "rfactor"
    iter: int


@dataclass(frozen=True)
class PackLayout(Step):
    """Read input `input` (index among the stage's inputs) from a repacked copy
    (a new stage inserted before this one): the dimension indexed by the stage's
    innermost spatial axis is tiled into panels of the product of the factors of
    Split step `split_step` from part `level` inward, the panel index moved first
    and the panel innermost — the GotoBLAS packed layout, so a register tile reads
    it contiguously. The copy is a stage of the program, made on every call and
    timed with it (constant conv weights of a network are packed once, at compile
    time, by the graph rewrite in models/layout.py, not by this step)."""

    kind: ClassVar[str] = "pack_layout"
    input: int
    split_step: int
    level: int


@dataclass(frozen=True)
class Annotate(Step):
    kind: ClassVar[str] = "annotate"
    iter: int
    annotation: Annotation


@dataclass(frozen=True)
class Pragma(Step):
    """`auto_unroll_max_step`: unroll loops of the stage whose nest does at most
    `value` iterations."""

    kind: ClassVar[str] = "pragma"
    iter: int
    name: str
    value: int


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (
        Split,
        FollowSplit,
        Fuse,
        Reorder,
        ComputeAt,
        ComputeInline,
        ComputeRoot,
        CacheWrite,
        Rfactor,
        PackLayout,
        Annotate,
        Pragma,
    )
}


def step_from_json(obj: dict) -> Step:
    """Inverse of `Step.to_json`; raises ScheduleError on a malformed record."""
    try:
        cls = STEP_TYPES[obj["kind"]]
        kwargs = {}
        for f in fields(cls):
            v = obj[f.name]
            if f.name == "annotation":
                v = Annotation(v)
            elif isinstance(v, list):
                v = tuple(v)
            kwargs[f.name] = v
        return cls(**kwargs)
    except (KeyError, TypeError, ValueError) as err:
        raise ScheduleError(f"malformed step record {obj!r}: {err}") from None


def steps_to_json(steps: list[Step] | tuple[Step, ...]) -> list[dict]:
    return [s.to_json() for s in steps]


def steps_from_json(objs: list[dict]) -> list[Step]:
    return [step_from_json(o) for o in objs]


def steps_hash(steps: list[Step] | tuple[Step, ...]) -> str:
    """A stable hash of a step list: with the workload key, the identity of a candidate."""
    text = json.dumps(steps_to_json(steps), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
