"""ComputeDAG: the stages of a computation in order, with the analysis the
sketch rules need (docs/search.md#sketch-rules) and a name-independent workload key."""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from functools import cached_property
from math import prod

from compiler.te.expr import (
    BinOp,
    Call,
    Cast,
    Cmp,
    Expr,
    FloatImm,
    IntImm,
    Not,
    Reduce,
    Select,
    TensorRead,
    Var,
)
from compiler.te.kinds import BinOpKind, IterKind
from compiler.te.tensor import Tensor
from compiler.te.traverse import children, walk


class ComputeDAG:
    """All stages reachable from `outputs`, producers before consumers.

    Example:
        >>> dag = ComputeDAG([C])
        >>> dag.flop_count, dag.workload_key[:8]
    """

    def __init__(self, outputs: Sequence[Tensor]):
        if not outputs:
            raise ValueError("ComputeDAG needs at least one output tensor")
        self.outputs: tuple[Tensor, ...] = tuple(outputs)
        order: list[Tensor] = []
        seen: set[int] = set()

        def visit(t: Tensor) -> None:
            if id(t) in seen:
                return
            seen.add(id(t))
            for x in t.inputs:
                visit(x)
            order.append(t)

        for out in self.outputs:
            visit(out)
        self.tensors: tuple[Tensor, ...] = tuple(order)
        self._index = {id(t): i for i, t in enumerate(order)}

    def __reduce__(self) -> tuple:
        """Pickle as the output tensors: the stage index is keyed by object id."""
        return (ComputeDAG, (self.outputs,))

    def index(self, t: Tensor) -> int:
        return self._index[id(t)]

    @property
    def placeholders(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.is_placeholder)

    @cached_property
    def consumers(self) -> dict[int, tuple[int, ...]]:
        """Stage index -> indices of the stages that read it."""
        out: dict[int, list[int]] = {i: [] for i in range(len(self.tensors))}
        for i, t in enumerate(self.tensors):
            for x in t.inputs:
                out[self.index(x)].append(i)
        return {k: tuple(v) for k, v in out.items()}

    def is_output(self, i: int) -> bool:
        return any(self.tensors[i] is o for o in self.outputs)

    # ------------------------------------------------------------------ FLOPs

    @cached_property
    def flop_count(self) -> int:
        """Floating-point operations of the whole computation (mul+add = 2)."""
        return sum(_stage_flops(t) for t in self.tensors if not t.is_placeholder)

    # --------------------------------------------------------- workload key

    @cached_property
    def canonical(self) -> tuple:
        """A nested tuple describing the computation with names erased."""
        return tuple(_canonical_stage(t, self._index) for t in self.tensors) + (
            tuple(self.index(o) for o in self.outputs),
        )

    @cached_property
    def workload_key(self) -> str:
        text = json.dumps(self.canonical, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def __repr__(self) -> str:
        lines = []
        for t in self.tensors:
            if t.is_placeholder:
                lines.append(f"{t.name} = placeholder{t.shape}")
            else:
                axes = ", ".join(a.var.name for a in t.axes)
                lines.append(f"{t.name}[{axes}] = {t.body!r}")
        return "\n".join(lines)


def _stage_flops(t: Tensor) -> int:
    assert t.body is not None
    body = t.body
    per_point = _expr_flops(body.source if isinstance(body, Reduce) else body)
    if isinstance(body, Reduce):
        per_point += 1
    points = prod(t.shape) * prod(a.extent for a in t.reduce_axes)
    return per_point * points


def _expr_flops(e: Expr) -> int:
    """Float operations of one evaluation; a select counts its costlier branch
    (one runs per point: a Winograd transform picks one sum of many)."""
    if isinstance(e, Select):
        branches = max(_expr_flops(e.true_value), _expr_flops(e.false_value))
        return _expr_flops(e.cond) + branches
    match e:
        case BinOp(op, a, _) if a.dtype.startswith("float") and op not in (
            BinOpKind.AND,
            BinOpKind.OR,
        ):
            n = 1
        case Cmp(_, a, _) if a.dtype.startswith("float"):
            n = 1
        case Call():
            n = 1
        case _:
            n = 0
    return n + sum(_expr_flops(c) for c in children(e))


# -------------------------------------------------------------- analysis


def is_strictly_inlineable(t: Tensor) -> bool:
    """Reads only `axis + const` indices, in order; no reduction, no branch, no math call."""
    if t.is_placeholder or t.reduce_axes:
        return False
    assert t.body is not None
    axis_vars = [a.var for a in t.axes]
    for node in walk(t.body):
        match node:
            case Select() | Call():
                return False
            case TensorRead(_, indices):
                if not _is_plain_access(indices, axis_vars):
                    return False
    return True


def _is_plain_access(indices: tuple[Expr, ...], axis_vars: list[Var]) -> bool:
    used: list[Var] = []
    for idx in indices:
        v = _var_plus_const(idx)
        if v is None:
            if isinstance(idx, IntImm):
                continue
            return False
        used.append(v)
    if len(set(used)) != len(used):
        return False
    positions = [axis_vars.index(v) for v in used if v in axis_vars]
    return positions == sorted(positions)


def _var_plus_const(e: Expr) -> Var | None:
    match e:
        case Var():
            return e
        case BinOp(BinOpKind.ADD | BinOpKind.SUB, Var() as v, IntImm()):
            return v
        case BinOp(BinOpKind.ADD, IntImm(), Var() as v):
            return v
    return None


def read_vars(t: Tensor, source: Tensor) -> list[set[Var]]:
    """For every read of `source` in `t`, the variables its indices use."""
    assert t.body is not None
    out = []
    for node in walk(t.body):
        if isinstance(node, TensorRead) and node.tensor is source:
            out.append({v for i in node.indices for v in walk(i) if isinstance(v, Var)})
    return out


def needs_multi_level_tiling(t: Tensor) -> bool:
    """Data reuse: an input misses two spatial axes of extent > 1, or one with a reduction."""
    if t.is_placeholder or not t.reduce_axes:
        return False
    spatial = [a.var for a in t.axes if a.extent > 1]
    for src in t.inputs:
        for used in read_vars(t, src):
            missing = sum(1 for v in spatial if v not in used)
            if missing >= 2 or (missing >= 1 and t.reduce_axes):
                return True
    return False


def batch_axes(t: Tensor) -> tuple[int, ...]:
    """Spatial axes of a reduction that every read of each of its two or more inputs
    uses, the innermost axis aside: a batch of independent products (the e and nu
    of a Winograd GEMM, batch_matmul's b), whose tiles share no data. Tiling such an
    axis inside the others only enlarges every inner tile (a deviation from Ansor,
    whose multi-level tiling splits every spatial axis: compiler/search/annotate.py
    keeps these whole at the outermost level)."""
    got = _BATCH_AXES.get(t)
    if got is None:
        got = _BATCH_AXES[t] = _batch_axes(t)
    return got


_BATCH_AXES: weakref.WeakKeyDictionary[Tensor, tuple[int, ...]] = weakref.WeakKeyDictionary()


def _batch_axes(t: Tensor) -> tuple[int, ...]:
    if t.is_placeholder or not t.reduce_axes or len(t.inputs) < 2:
        return ()
    used = [read_vars(t, src) for src in t.inputs]
    return tuple(
        i
        for i, a in enumerate(t.axes[:-1])
        if a.extent > 1 and all(a.var in vs for reads in used for vs in reads)
    )


def is_elementwise_consumer(consumer: Tensor, producer: Tensor) -> bool:
    """Same shape, plain same-order reads of `producer`, and not both reductions."""
    if consumer.shape != producer.shape or (consumer.reduce_axes and producer.reduce_axes):
        return False
    assert consumer.body is not None
    axis_vars = [a.var for a in consumer.axes]
    for node in walk(consumer.body):
        is_read = isinstance(node, TensorRead) and node.tensor is producer
        if is_read and list(node.indices) != axis_vars:
            return False
    return True


def needs_rfactor(t: Tensor, cores: int) -> bool:
    """Too little spatial parallelism for the reduction (docs/search.md#sketch-rules), or, for a
    tiled op, a gemv-like read (`reads_along_reduction`: a deviation from Ansor)."""
    if not t.reduce_axes:
        return False
    spatial = prod(t.shape)
    reduction = prod(a.extent for a in t.reduce_axes)
    if needs_multi_level_tiling(t):
        few_spatial = spatial <= reduction and spatial <= 16 * cores
        return few_spatial or reads_along_reduction(t)
    return reduction > cores and spatial <= 16 * cores


GEMV_REUSE = 8  # at most this many uses per element of the op's largest input


def reads_along_reduction(t: Tensor) -> bool:
    """Gemv-like: the op's largest input is used at most GEMV_REUSE times per element
    and every read of it indexes its contiguous (last) dimension by reduction axes only.

    Dense with the weight laid out [OUT, IN] at batch 1 is the case: every tiled
    sketch vectorizes an output axis, which reads the weight with a stride of IN
    floats, and a repacked copy costs a pass over the weight on every call. Ansor
    rewrites a constant weight's layout once instead; a weight that is an input of
    the task cannot be. Rfactor makes the reduction's inner part a spatial axis
    that can be vectorized along the contiguous dimension (TVM's dense_nopack
    template does the same by hand).
    """
    if not t.reduce_axes or not t.inputs:
        return False
    src = max(t.inputs, key=lambda x: prod(x.shape))
    size = prod(src.shape)
    if not size or prod(t.shape) * prod(a.extent for a in t.reduce_axes) > GEMV_REUSE * size:
        return False
    assert t.body is not None
    long_reduce = {a.var for a in t.reduce_axes if a.extent > 1}
    reads = [n for n in walk(t.body) if isinstance(n, TensorRead) and n.tensor is src]
    for read in reads:
        used = {v for v in walk(read.indices[-1]) if isinstance(v, Var)}
        if not used or not used <= long_reduce:
            return False
    return bool(reads)


def has_expensive_op(t: Tensor) -> bool:
    return t.body is not None and any(isinstance(n, Call) for n in walk(t.body))


# ------------------------------------------------------------ canonical form


def _canonical_stage(t: Tensor, index: dict[int, int]) -> tuple:
    if t.is_placeholder:
        return ("placeholder", t.shape, t.dtype)
    names = {a.var: f"a{i}" for i, a in enumerate(t.axes)}
    names.update({a.var: f"r{i}" for i, a in enumerate(t.reduce_axes)})
    assert t.body is not None
    attrs = tuple((k, repr(v)) for k, v in t.attrs)
    return ("compute", t.shape, t.dtype, t.tag, attrs, _canonical_expr(t.body, names, index))


def _canonical_expr(e: Expr, names: dict[Var, str], index: dict[int, int]) -> object:
    def rec(x: Expr) -> object:
        return _canonical_expr(x, names, index)

    match e:
        case Var():
            return names.get(e, "?" + e.name)
        case IntImm(v, t):
            return ["i", v, t]
        case FloatImm(v, t):
            return ["f", repr(v), t]
        case BinOp(op, a, b):
            return [op.value, rec(a), rec(b)]
        case Cmp(op, a, b):
            return ["cmp" + op.value, rec(a), rec(b)]
        case Not(a):
            return ["not", rec(a)]
        case Select(c, a, b):
            return ["select", rec(c), rec(a), rec(b)]
        case Cast(t, a):
            return ["cast", t, rec(a)]
        case Call(f, args):
            return ["call", f.value, [rec(a) for a in args]]
        case TensorRead(t, idx):
            return ["read", index[id(t)], [rec(i) for i in idx]]
        case Reduce(c, src, axes):
            return ["reduce", c.value, [a.extent for a in axes], rec(src)]
    raise TypeError(f"cannot canonicalize {e!r}")


def spatial_extents(t: Tensor) -> list[int]:
    return [a.extent for a in t.axes if a.kind is IterKind.SPATIAL]
