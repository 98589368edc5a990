"""What templates share: a schedule builder that names loops by uid, and finding the
anchor stage (the op's reduction) and the stage that holds its tile loops.

The tile loops live in the anchor's element-wise consumer (the fused epilogue:
bias, relu, ...) when there is one, else in a write cache's copy; the anchor
is computed inside them. Every other injective stage is inlined, except a
padding stage when the template's "pad" knob puts it at root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.autotvm.space import Config
from compiler.ops.tags import CONV2D_NCHWC, has_tag
from compiler.schedule.analysis import blocked_consumer, elementwise_consumer
from compiler.schedule.default import schedule_elementwise
from compiler.schedule.stage import Attach, SplitRel
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    ComputeInline,
    Fuse,
    PackLayout,
    Pragma,
    Reorder,
    Split,
    Step,
)
from compiler.te.dag import ComputeDAG
from compiler.te.expr import TensorRead
from compiler.te.traverse import walk

ANNOTATION = {"none": None, "unroll": Annotation.UNROLL, "vec": Annotation.VECTORIZE}


class Sched:
    """A State built step by step; loops are named by uid, stable across splits and
    reorders of their stage (a fuse makes a new uid). Stage indices shift when a
    cache write or a layout pack inserts a stage: those methods return the new ones."""

    def __init__(self, dag: ComputeDAG, state: State | None = None) -> None:
        self.state = State.initial(dag) if state is None else state

    def apply(self, step: Step) -> None:
        self.state = self.state.apply(step)

    def loops(self, k: int) -> list[int]:
        return [it.uid for it in self.state.stages[k].iters]

    def pos(self, k: int, uid: int) -> int:
        return self.state.stages[k].iter_index(uid)

    def extent(self, k: int, uid: int) -> int:
        it = self.state.stages[k].iter_by_uid(uid)
        assert it is not None and it.extent is not None
        return it.extent

    def split(self, k: int, uid: int, factors: Sequence[int]) -> list[int]:
        """Split loop `uid` by inner extents `factors`; the new uids, outer to inner."""
        self.apply(Split(k, self.pos(k, uid), tuple(int(f) for f in factors)))
        rel = self.state.stages[k].relations[-1]
        assert isinstance(rel, SplitRel)
        return list(rel.children)

    def reorder(self, k: int, uids: Sequence[int]) -> None:
        order = tuple(self.pos(k, u) for u in uids)
        if order != tuple(range(len(order))):
            self.apply(Reorder(k, order))

    def fuse(self, k: int, uids: Sequence[int]) -> int:
        """Fuse consecutive loops; the fused loop's uid."""
        if len(uids) == 1:
            return uids[0]
        self.apply(Fuse(k, tuple(self.pos(k, u) for u in uids)))
        return self.state.stages[k].next_uid - 1

    def annotate(self, k: int, uid: int, kind: str | Annotation | None) -> None:
        ann = ANNOTATION[kind] if isinstance(kind, str) else kind
        if ann is not None and ann is not Annotation.NONE and self.extent(k, uid) > 1:
            self.apply(Annotate(k, self.pos(k, uid), ann))

    def parallel(self, k: int, uids: Sequence[int]) -> int:
        """Fuse the loops and run them in parallel; the fused uid."""
        fused = self.fuse(k, uids)
        self.annotate(k, fused, Annotation.PARALLEL)
        return fused

    def compute_at(self, k: int, target: int, uid: int) -> None:
        self.apply(ComputeAt(k, target, self.pos(target, uid)))

    def cache_write(self, k: int) -> tuple[int, int]:
        """(local, copy) stage indices; stages after k shift by one."""
        self.apply(CacheWrite(k))
        return k, k + 1

    def pack_layout(self, k: int, input_index: int, split_step: int, level: int) -> int:
        """Read input `input_index` of stage k from a packed copy; the packed stage's
        index (k; stage k and the stages after it shift by one)."""
        self.apply(PackLayout(k, input_index, split_step, level))
        return k

    def unroll_max_step(self, k: int, value: int) -> None:
        if value:
            self.apply(Pragma(k, 0, "auto_unroll_max_step", int(value)))

    @property
    def last_step(self) -> int:
        return len(self.state.steps) - 1


@dataclass
class Anchored:
    """The anchor stage (computes the tile), the stage with the tile loops, and
    whether that stage is the fused epilogue (else a write cache's copy)."""

    sch: Sched
    anchor: int
    outer: int
    epilogue: bool
    pad: int | None  # a padding stage kept at root, else None


def find_anchor(state: State, tags: Sequence[str]) -> int | None:
    """The only stage with a reduction, when it carries one of `tags`."""
    reductions = [
        k for k, st in enumerate(state.stages) if not st.is_placeholder and st.op.reduce_axes
    ]
    if len(reductions) != 1:
        return None
    k = reductions[0]
    return k if any(has_tag(state.stages[k].op, t) for t in tags) else None


def pad_stage(state: State, anchor: int) -> int | None:
    """A padding stage the anchor reads directly, if any."""
    for k, readers in state.readers.items():
        if anchor in readers and has_tag(state.stages[k].op, "pad"):
            return k
    return None


_SETUPS: dict[tuple, tuple[ComputeDAG, Anchored]] = {}  # per DAG (by identity; bounded)


def define_pad_knob(
    cfg: Config, dag: ComputeDAG, tags: Sequence[str], fallback: str = "root"
) -> bool:
    """A "pad" knob (inline / root) when the anchor reads a padding stage; whether to
    keep it at root. (For a dense conv a parallel copy costs less than bounds checks
    in the inner loop: 126 vs 94 GFLOP/s on a ResNet-18 conv; a depthwise conv reads
    each input once or so and is better off inlining it.)"""
    key = (id(dag), tuple(tags), "pad")
    hit = _SETUPS.get(key)
    if hit is None or hit[0] is not dag:
        s = State.initial(dag)
        k = find_anchor(s, tags)
        hit = _SETUPS[key] = (dag, k is not None and pad_stage(s, k) is not None)  # type: ignore[assignment]
    if not hit[1]:
        return False
    return cfg.define_knob("pad", ["inline", "root"], fallback=fallback).val == "root"


def inline_injective(s: State, keep: set[int] = frozenset()) -> State:  # type: ignore[assignment]
    for k, st in enumerate(s.stages):
        if st.is_placeholder or st.op.reduce_axes or s.is_output(k) or k in keep:
            continue
        s = s.apply(ComputeInline(k))
    return s


def tile_consumer(s: State, k: int) -> int | None:
    """The root stage the anchor's tile can be computed in: its element-wise consumer,
    or for a blocked conv the stage reading [N, F/b, OH, OW, b] back as NCHW."""
    if s.stages[k].op.tag == CONV2D_NCHWC:
        return blocked_consumer(s, k)
    return elementwise_consumer(s, k)


def anchor_setup(dag: ComputeDAG, tags: Sequence[str], *, keep_pad: bool = False) -> Anchored:
    """Inline the injective stages, find the anchor and its tile stage (write cache if
    it has no element-wise consumer). The same for every config of a DAG, so made
    once per DAG (a third of a conv config's instantiation otherwise)."""
    key = (id(dag), tuple(tags), keep_pad)
    hit = _SETUPS.get(key)
    if hit is None or hit[0] is not dag:
        if len(_SETUPS) >= 256:
            _SETUPS.clear()
        hit = _SETUPS[key] = (dag, _anchor_setup(dag, tags, keep_pad))
    a = hit[1]
    return Anchored(Sched(dag, a.sch.state), a.anchor, a.outer, a.epilogue, a.pad)


def _anchor_setup(dag: ComputeDAG, tags: Sequence[str], keep_pad: bool) -> Anchored:
    s = State.initial(dag)
    k = find_anchor(s, tags)
    if k is None:
        raise ValueError(f"no single {'/'.join(tags)} stage in this DAG")
    pad = pad_stage(s, k) if keep_pad else None
    sch = Sched(dag)
    sch.state = inline_injective(s, {pad} if pad is not None else set())
    c = tile_consumer(sch.state, k)
    if c is not None:
        return Anchored(sch, k, c, True, pad)
    if not sch.state.is_output(k):
        raise ValueError(f"stage {sch.state.stages[k].name} feeds a stage the template cannot fuse")
    local, copy = sch.cache_write(k)
    return Anchored(sch, local, copy, False, pad)


def matches(dag: ComputeDAG, tags: Sequence[str]) -> bool:
    """The DAG is one anchor with one of `tags`, injective stages around it, and the
    anchor is the output or feeds it element by element (the template's shape)."""
    s = State.initial(dag)
    k = find_anchor(s, tags)
    if k is None:
        return False
    s = inline_injective(s)
    if s.is_output(k):
        return True
    c = tile_consumer(s, k)
    return c is not None and s.is_output(c)


def matches_rank(dag: ComputeDAG, tags: Sequence[str], ndim: int) -> bool:
    """`matches(dag, tags)` with an anchor of `ndim` dimensions: 4 for NCHW data, 5 for
    blocked data [N, C/b, H, W, b] (the pools take both; each has its template)."""
    s = State.initial(dag)
    k = find_anchor(s, tags)
    return k is not None and len(s.stages[k].op.shape) == ndim and matches(dag, tags)


def schedule_pad_root(sch: Sched, pad: int | None) -> None:
    """A padding stage at root: fused parallel outer loops, vector inner loop."""
    if pad is not None and sch.state.stages[pad].attach is Attach.ROOT:
        sch.state = schedule_elementwise(sch.state, pad)


def packable_inputs(state: State, k: int) -> list[int]:
    """Inputs of stage k (tensor inputs) read along its innermost spatial axis: the
    ones a PackLayout step can rewrite into panels."""
    op = state.stages[k].op
    assert op.body is not None
    last = op.axes[-1].var
    out = []
    for i, x in enumerate(op.inputs):
        reads = [n for n in walk(op.body) if isinstance(n, TensorRead) and n.tensor is x]
        if x.is_placeholder and reads and all(last in r.indices for r in reads):
            out.append(i)
    return out


def at_most(limit: int):
    """A split filter: the innermost extent is at most `limit`."""
    return lambda e: e.size[-1] <= limit


def vector_width(extent: int, limit: int = 64):
    """A split filter for a vectorized innermost loop: at most `limit` lanes and at least
    8 (or the widest the extent allows under the limit, if smaller): narrower vectors
    are never faster here, and random search would spend its trials on them."""
    widest = max(d for d in range(1, min(extent, limit) + 1) if extent % d == 0)
    least = min(8, widest)
    return lambda e: least <= e.size[-1] <= limit
