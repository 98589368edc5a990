"""AutoTVM's "itervar" features of a config (docs/autotvm.md#knobs), read off the schedule
`State` its template returns, without lowering it.

Per loop of a stage's nest (the loops of the stage it is computed at, down to the
attach point, then its own): extent, depth, the products of the extents above
(top-down, inclusive) and below (bottom-up, inclusive), the annotation one-hot
(none / vectorize / unroll / parallel); and per buffer access of the stage's body
(its write first, then its reads in order): the stride of the flattened index
with respect to that loop, and over that loop and the loops inside it the
touched count (product of the extents the access moves with), the reuse
(product of the extents it does not move with) and the bytes of the box it
touches. Numbers go through TVM's log transform sign(x) * log2(|x| + 1).

The vector has a fixed length: the main stage (the one with the reduction, else
the output) first, then up to `OTHER_STAGES` other stages (fused epilogue or
write-cache copy, padding, packed layout) in program order; loops are placed
innermost first (the innermost loops of two configs line up, however deep
their nests), missing loops and stages are zeros. TVM pads its variable-length
vector at the end instead, which lines up the outermost loops.

Strides follow the loops through splits (a child moves its parent by the
product of the inner children's extents) and fuses (a fused loop moves like
its innermost part, as TVM's parser reads `fused % e`); a body index that is
not affine in the axes counts each axis in it with coefficient 1.

Cost here: about 0.22-0.24 ms per state (the body analysis is cached per
program structure, so a state costs its loop nests and a few numpy ops), on top
of the template's own instantiation (about 0.35 ms for the matmul and conv
templates); lowering a state instead costs 1-4 ms. See `ItervarFeatures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from compiler.schedule.stage import Attach, SplitRel, Stage
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation, ScheduleError
from compiler.te.expr import BinOp, Expr, IntImm, TensorRead, Var
from compiler.te.kinds import BinOpKind
from compiler.te.traverse import children, walk

MAIN_LOOPS = 16  # loop slots of the main stage
MAIN_ACCESSES = 4  # access slots per loop of the main stage (write + 3 reads)
OTHER_STAGES = 3
OTHER_LOOPS = 10
OTHER_ACCESSES = 3
ANNOTATIONS = (Annotation.NONE, Annotation.VECTORIZE, Annotation.UNROLL, Annotation.PARALLEL)
ANN_INDEX = {a: k for k, a in enumerate(ANNOTATIONS)}
LOOP_WIDTH = 4 + len(ANNOTATIONS)  # extent, depth, top-down, bottom-up, one-hot
ACCESS_WIDTH = 4  # stride, count, reuse, bytes
STAGE_WIDTH = 4  # auto_unroll_max_step, iterations, loops, attach depth
CACHE_ROWS = 1 << 16  # cached configs per tuner (4 KB each)
ITEM_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


def _stage_len(loops: int, accesses: int) -> int:
    return STAGE_WIDTH + loops * (LOOP_WIDTH + accesses * ACCESS_WIDTH)


FEATURE_LEN = (
    1
    + _stage_len(MAIN_LOOPS, MAIN_ACCESSES)
    + OTHER_STAGES * _stage_len(OTHER_LOOPS, OTHER_ACCESSES)
)


def slog(x: np.ndarray | float) -> np.ndarray:
    """TVM's log transform: sign(x) * log2(|x| + 1)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log2(np.abs(x) + 1.0)


# --------------------------------------------------------------- affine maps


def _affine(e: Expr, axes: dict[Var, int], n: int) -> np.ndarray:
    """Coefficients of `e` over the axes (a vector of n); non-affine parts count
    each axis they use with 1."""
    match e:
        case Var():
            out = np.zeros(n)
            if e in axes:
                out[axes[e]] = 1.0
            return out
        case IntImm():
            return np.zeros(n)
        case BinOp(BinOpKind.ADD, a, b):
            return _affine(a, axes, n) + _affine(b, axes, n)
        case BinOp(BinOpKind.SUB, a, b):
            return _affine(a, axes, n) - _affine(b, axes, n)
        case BinOp(BinOpKind.MUL, a, IntImm(v)) | BinOp(BinOpKind.MUL, IntImm(v), a):
            return v * _affine(a, axes, n)
    out = np.zeros(n)
    for node in walk(e):
        if isinstance(node, Var) and node in axes:
            out[axes[node]] = 1.0
    return out


def _reads(e: Expr) -> list[TensorRead]:
    """Tensor reads of a body in evaluation order (not the reads inside indices)."""
    out: list[TensorRead] = []
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, TensorRead):
            out.append(node)
            continue
        stack.extend(reversed(children(node)))
    return out


def _root_axes(stage: Stage) -> dict[Var, int]:
    op = stage.op
    axes = {a.var: k for k, a in enumerate(op.axes)}
    axes.update({a.var: len(op.axes) + k for k, a in enumerate(op.reduce_axes)})
    return axes


def _loop_maps(stage: Stage, spans: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(extents [L], coefficients [L, roots]) of the stage's loops: how far one step
    of each loop moves each root axis. `spans` replaces the root extents (a stage
    computed inside another covers only the tile its consumer's inner loops need)."""
    n = len(stage.root_iters)
    eye = np.eye(n)
    coef = {it.uid: eye[k] for k, it in enumerate(stage.root_iters)}
    extent = {it.uid: float(it.extent or 1) for it in stage.root_iters}
    if spans is not None:
        extent.update({it.uid: float(s) for it, s in zip(stage.root_iters, spans)})
    for rel in stage.relations:
        if isinstance(rel, SplitRel):
            # inner to outer: a child spans its factor or what is left of the parent
            left, step = extent[rel.parent], 1.0
            for uid, factor in zip(rel.children[::-1], (*rel.factors[::-1], 0)):
                coef[uid] = coef[rel.parent] * step
                size = min(float(factor or 1), left) if factor != 0 else left
                extent[uid] = size
                left = math.ceil(left / size)
                step *= factor or 1
        else:
            coef[rel.child] = coef[rel.parents[-1]]
            extent[rel.child] = math.prod(extent[p] for p in rel.parents)
    uids = [it.uid for it in stage.iters]
    ext = np.asarray([extent[u] for u in uids])
    return ext, np.asarray([coef[u] for u in uids]).reshape(len(uids), n)


# ------------------------------------------------------------------- nests

_CACHE: dict[tuple, object] = {}  # body analyses by program structure (bounded)
_CACHE_LIMIT = 4096


def _structure(state: State) -> tuple:
    """A key for the program's stage structure: names, shapes and placement of the
    stages (one DAG's stage bodies are the same for equal keys)."""
    key = state.__dict__.get("_itervar_key")
    if key is None:
        key = (state.dag.workload_key, *((s.name, s.op.shape, s.attach) for s in state.stages))
        state.__dict__["_itervar_key"] = key
    return key


def _cached(key: tuple, make: Callable[[], object]) -> object:
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = make()
    return _CACHE[key]


class _Nest:
    """A stage's loop nest: extents [L], annotations, coefficients [L, roots]."""

    def __init__(self, ext: np.ndarray, anns: list[Annotation], coef: np.ndarray) -> None:
        self.ext, self.anns, self.coef = ext, anns, coef


def _nest(state: State, k: int) -> tuple[_Nest, int]:
    """Stage k's full loop nest and how many of its loops belong to the stage it is
    computed at."""
    stage = state.stages[k]
    anns = [it.annotation for it in stage.iters]
    if stage.attach is not Attach.AT:
        ext, coef = _loop_maps(stage)
        return _Nest(ext, anns, coef), 0
    outer, _ = _nest(state, stage.attach_target)
    target = state.stages[stage.attach_target]
    depth = len(outer.ext) - len(target.iters) + target.iter_index(stage.attach_iter) + 1
    # the target's axes -> this stage's axes, through the target's read of this stage
    key = ("consumer", k, _structure(state))
    to_own: np.ndarray = _cached(key, lambda: _consumer_map(state, stage.attach_target, stage))  # type: ignore[assignment]
    outer_coef = outer.coef @ to_own
    # bound inference: the spatial axes cover what the target's inner loops step over
    inner = np.abs(outer_coef[depth:]) * (outer.ext[depth:] - 1)[:, None]
    roots = np.asarray([float(it.extent or 1) for it in stage.root_iters])
    spans = np.minimum(roots, 1 + inner.sum(axis=0))
    spans[len(stage.op.axes) :] = roots[len(stage.op.axes) :]
    ext, coef = _loop_maps(stage, spans)
    ext = np.concatenate([outer.ext[:depth], ext])
    coef = np.concatenate([outer_coef[:depth], coef])
    return _Nest(ext, outer.anns[:depth] + anns, coef), depth


def _consumer_map(state: State, target: int, producer: Stage) -> np.ndarray:
    """[target roots, producer roots]: how a step of each target axis moves each
    producer axis, from the target's (first) read of the producer."""
    n = len(producer.root_iters)
    n_target = len(state.stages[target].root_iters)
    read = next((r for r in _reads(state.body(target)) if r.tensor is producer.output), None)
    out = np.zeros((n_target, n))
    if read is None:
        return out
    axes = _root_axes(state.stages[target])
    for d, index in enumerate(read.indices):
        out[:, d] = _affine(index, axes, n_target)
    return out


class _Accesses:
    """A stage's buffer accesses (its write, then its reads in order), stacked:
    per dimension its coefficients over the stage's axes [D, roots], extent and
    stride in the flattened buffer; per access its stride coefficients [roots, A],
    first dimension and item bytes."""

    def __init__(self, state: State, k: int, limit: int) -> None:
        stage = state.stages[k]
        axes = _root_axes(stage)
        n = len(stage.root_iters)
        out_t = stage.op
        dims = [np.eye(n)[: len(out_t.axes)].reshape(len(out_t.axes), n)]
        shapes, items = [out_t.shape], [ITEM_BYTES.get(out_t.dtype, 4)]
        for read in _reads(state.body(k))[: limit - 1]:
            dims.append(np.asarray([_affine(i, axes, n) for i in read.indices]).reshape(-1, n))
            shapes.append(read.tensor.shape)
            items.append(ITEM_BYTES.get(read.tensor.dtype, 4))
        strides = [np.cumprod((1.0, *shape[:0:-1]))[::-1] for shape in shapes]
        self.dims = np.concatenate(dims)  # [D, roots]
        self.shape = np.concatenate([np.asarray(sh, float) for sh in shapes])
        self.starts = np.cumsum([0] + [len(d) for d in dims[:-1]])
        self.items = np.asarray(items, float)
        flat = self.dims * np.concatenate(strides)[:, None]
        self.stride = np.add.reduceat(flat, self.starts, axis=0).T  # [roots, A]


# ---------------------------------------------------------------- features


def _stage_features(state: State, k: int, loops: int, accesses: int) -> np.ndarray:
    nest, depth = _nest(state, k)
    ext = nest.ext
    n_loops = len(ext)
    acc: _Accesses = _cached(  # type: ignore[assignment]
        ("accesses", k, accesses, _structure(state)), lambda: _Accesses(state, k, accesses)
    )
    n_acc = len(acc.items)
    bottom_up = np.cumprod(ext[::-1])[::-1]
    stride = nest.coef @ acc.stride  # [loops, A]: flattened index step per loop
    moved = np.where(stride != 0, ext[:, None], 1.0)
    count = np.cumprod(moved[::-1], axis=0)[::-1]
    steps = np.abs(nest.coef @ acc.dims.T) * (ext - 1)[:, None]  # [loops, D]
    span = np.minimum(np.cumsum(steps[::-1], axis=0)[::-1] + 1, acc.shape)
    touched = np.multiply.reduceat(span, acc.starts, axis=1) * acc.items
    numeric = np.empty((n_loops, 3 + ACCESS_WIDTH * n_acc))  # log-transformed columns
    numeric[:, 0], numeric[:, 1], numeric[:, 2] = ext, np.cumprod(ext), bottom_up
    numeric[:, 3::4], numeric[:, 4::4] = stride, count
    numeric[:, 5::4], numeric[:, 6::4] = bottom_up[:, None] / count, touched
    logs = slog(numeric)
    rows = np.zeros((n_loops, LOOP_WIDTH + accesses * ACCESS_WIDTH))
    rows[:, 0] = logs[:, 0]
    rows[:, 1] = np.arange(1, n_loops + 1)
    rows[:, 2:4] = logs[:, 1:3]
    rows[np.arange(n_loops), 4 + np.asarray([ANN_INDEX[a] for a in nest.anns], int)] = 1.0
    rows[:, LOOP_WIDTH : LOOP_WIDTH + logs.shape[1] - 3] = logs[:, 3:]
    stage = state.stages[k]
    iterations = float(bottom_up[0]) if n_loops else 1.0
    head = [math.log2(stage.auto_unroll_max_step + 1), math.log2(iterations + 1), n_loops, depth]
    body = np.zeros((loops, rows.shape[1]))
    kept = rows[::-1][:loops]  # innermost first
    body[: len(kept)] = kept
    return np.concatenate([np.asarray(head), body.ravel()])


def main_stage(state: State) -> int:
    """The stage with the reduction (the first), else the first output."""
    live = [
        k
        for k, s in enumerate(state.stages)
        if not s.is_placeholder and s.attach is not Attach.INLINE
    ]
    reducing = [k for k in live if state.stages[k].op.reduce_axes]
    if reducing:
        return reducing[0]
    return next((k for k in live if state.is_output(k)), live[-1])


def itervar_features(state: State) -> np.ndarray:
    """The fixed-length itervar feature vector of a complete state ([FEATURE_LEN];
    the first entry is 1, a config whose schedule fails is all zeros)."""
    main = main_stage(state)
    others = [
        k
        for k, s in enumerate(state.stages)
        if not s.is_placeholder and s.attach is not Attach.INLINE and k != main
    ][:OTHER_STAGES]
    parts = [np.ones(1), _stage_features(state, main, MAIN_LOOPS, MAIN_ACCESSES)]
    parts += [_stage_features(state, k, OTHER_LOOPS, OTHER_ACCESSES) for k in others]
    out = np.zeros(FEATURE_LEN)
    flat = np.concatenate(parts)
    out[: len(flat)] = flat
    return out


class ItervarFeatures:
    """Itervar features of config indices, each computed once (`states`: index ->
    State, e.g. a template's instantiate on one DAG; ScheduleError: a zero row).

    Throughput on this machine (1 thread at nice 19 beside a benchmark, 300 fresh
    random configs, the template's instantiate included): matmul 1024^3 about
    1,400 configs/s, the ResNet-18 convs 56x56 and 28x28 about 1,700 /s (0.24 ms
    of it the features). A cached index costs a dict look-up; at most `limit`
    rows (float32, 4 KB each) are kept."""

    def __init__(self, states: Callable[[int], State], limit: int = CACHE_ROWS) -> None:
        self.states = states
        self.limit = limit
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, indices: list[int]) -> np.ndarray:
        rows = np.empty((len(indices), FEATURE_LEN), dtype=np.float32)
        for r, index in enumerate(indices):
            row = self.cache.get(index)
            if row is None:
                if len(self.cache) >= self.limit:  # the oldest quarter goes
                    for old in list(self.cache)[: self.limit // 4]:
                        del self.cache[old]
                row = self.cache[index] = self._compute(index).astype(np.float32)
            rows[r] = row
        return rows

    def _compute(self, index: int) -> np.ndarray:
        try:
            return itervar_features(self.states(index))
        except ScheduleError:
            return np.zeros(FEATURE_LEN)
