"""Per-store feature rows of a loop program (Ansor's per-store features, docs/search.md#cost-model).

`program_features(func)` walks the loop IR once; at each `Store` it computes
the row described in `layout`. Choices where Ansor's definition is loose or
does not carry over to flat buffers (each one a documented deviation):
- one row per Store statement (Ansor keys rows by buffer, so a reduction's
  init and update share one row); the init store of a reduction is its own row;
- computation counts cover the stored value, the store index and the
  conditions of enclosing `if`s (ragged-split guards run every iteration);
  they are per-iteration counts times the product of enclosing loop extents;
- an annotated loop's position: spatial when its variable appears in the store
  index (inner/outer/middle by the buffer dimension it steps, mixed when it
  steps several), reduce when it does not and the store updates its own buffer
  (inner/outer/middle among those loops), else outer spatial (Ansor's fallback
  for loops above a compute_at). Several loops of one kind: mixed;
- touched regions come from `access.touched` on flat indices (Ansor: per
  dimension interval bounds); `lines` uses the innermost moving loop's stride
  (Ansor's formula, with its reduce ratio over the non-moving inner loops);
- the arithmetic intensity curve is sampled on log2(flops) vs log2(bytes)
  per loop level, as in Ansor's first implementation: 10 points evenly spaced
  in log-flops, linear interpolation between loop levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import log2, prod

import numpy as np

from compiler.cost_model import access
from compiler.cost_model.layout import (
    ANNOTATION_WIDTH,
    BUFFER_WIDTH,
    CURVE_SAMPLES,
    N_BUFFERS,
    N_FEATURES,
    OFF_ALLOC,
    OFF_ANNOTATION,
    OFF_BUFFERS,
    OFF_CURVE,
    OFF_OUTER,
    AccessType,
    Pos,
    ReuseType,
)
from compiler.cost_model.ops_count import OpCounter, unpack
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    PrimFunc,
    Seq,
    Stmt,
    Store,
)
from compiler.te.expr import Expr, Var

_ANNOTATED = (ForKind.VECTORIZED, ForKind.UNROLLED, ForKind.PARALLEL)
_ELEM_BYTES = {"float32": 4, "float64": 8, "int32": 4, "int64": 8, "bool": 1}


def slog(x: np.ndarray) -> np.ndarray:
    """sign(x) log2(|x| + 1): Ansor's scaling of counts and sizes."""
    return np.sign(x) * np.log2(np.abs(x) + 1)


def program_features(func: PrimFunc, unroll_steps: Mapping[str, int] | None = None) -> np.ndarray:
    """[n_stores, N_FEATURES] float32 rows, slog-scaled, in statement order.

    `unroll_steps` maps a stored buffer's name to its stage's auto_unroll_max_step.
    """
    walker = _Walker(unroll_steps or {})
    walker.visit(func.body)
    if not walker.rows:
        return np.zeros((0, N_FEATURES), np.float32)
    return slog(np.array(walker.rows, dtype=np.float64)).astype(np.float32)


class _Walker:
    """Depth-first walk keeping the loop stack, allocations and touched regions."""

    def __init__(self, unroll_steps: Mapping[str, int]):
        self.unroll_steps = unroll_steps
        self.loops: list[For] = []
        self.guards: list[Expr] = []
        # id(buffer) -> (buffer, product of loop extents outside its Allocate, their count)
        self.alloc_outer: dict[int, tuple[Buffer, float, int]] = {}
        self.touch: dict[int, _LoopTouch] = {}  # id(For) -> what its stores touch
        self.rows: list[list[float]] = []
        self.ops = OpCounter()
        self.forms = access.SharedForms()

    def visit(self, s: Stmt) -> None:
        t = type(s)
        if t is For:
            self.loops.append(s)  # type: ignore[arg-type]
            self.visit(s.body)  # type: ignore[attr-defined]
            self.loops.pop()
        elif t is Seq:
            for x in s.stmts:  # type: ignore[attr-defined]
                self.visit(x)
        elif t is Store:
            self.rows.append(_StoreRow(self, s).row())  # type: ignore[arg-type]
        elif t is IfThenElse:
            self.guards.append(s.cond)  # type: ignore[attr-defined]
            self.visit(s.then_case)  # type: ignore[attr-defined]
            if s.else_case is not None:  # type: ignore[attr-defined]
                self.visit(s.else_case)  # type: ignore[attr-defined]
            self.guards.pop()
        elif t is Allocate:
            buf = s.buffer  # type: ignore[attr-defined]
            outer = float(prod(f.extent for f in self.loops))
            self.alloc_outer[id(buf)] = (buf, outer, len(self.loops))
            self.visit(s.body)  # type: ignore[attr-defined]


class _LoopTouch:
    """What the stores inside one loop touch per iteration of it, so far."""

    __slots__ = ("by_buffer", "bytes", "elem_bytes")

    def __init__(self) -> None:
        # id(buffer) -> [(elements touched per iteration of the loop, elem bytes)]
        self.by_buffer: dict[int, list[tuple[int, int]]] = {}
        self.bytes = 0  # the sum of elements x elem bytes over all entries
        self.elem_bytes = 0  # the sum of elem bytes over all entries

    def add(self, buffer: Buffer, n: int, elem_bytes: int) -> None:
        self.by_buffer.setdefault(id(buffer), []).append((n, elem_bytes))
        self.bytes += n * elem_bytes
        self.elem_bytes += elem_bytes


class _Access:
    """All accesses of one buffer in one statement."""

    __slots__ = ("buffer", "elem_bytes", "indices", "regions", "terms", "type")

    def __init__(self, buffer: Buffer, acc_type: AccessType):
        self.buffer = buffer
        self.type = acc_type
        self.indices: list[Expr] = []
        self.terms: list[tuple[access.Term, ...]] = []
        # per index, its touched region while the loops from each level inwards run
        self.regions: list[list[access.Region]] = []
        self.elem_bytes = _ELEM_BYTES.get(buffer.dtype, 4)


class _StoreRow:
    """The feature row of one Store, given the walker's context."""

    def __init__(self, walker: _Walker, store: Store):
        self.w = walker
        self.store = store
        self.loops = walker.loops
        self.scope = access.LoopScope([(f.var, f.extent) for f in self.loops], walker.forms)
        self.outer_prod = float(prod(f.extent for f in self.loops))

    def row(self) -> list[float]:
        ops = self.w.ops
        packed, _, loads = ops.count(self.store.value)
        packed += ops.count(self.store.index)[0]
        for g in self.w.guards:
            packed += ops.count(g)[0]
        counts = unpack(packed)
        row = [0.0] * N_FEATURES
        row[:16] = [c * self.outer_prod for c in counts]
        accesses = self._accesses(loads)
        self._annotations(row, accesses)
        compute_ops = float(sum(counts[:7]))
        ops_list, bytes_list = self._levels(accesses, compute_ops)
        self._buffers(row, accesses)
        _curve(row, compute_ops, ops_list, bytes_list)
        self._alloc_and_outer(row)
        return row

    # ------------------------------------------------------------ accesses

    def _accesses(self, loads: Sequence[tuple[Buffer, Expr]]) -> list[_Access]:
        store = self.store
        out = {id(store.buffer): _Access(store.buffer, AccessType.WRITE)}
        out[id(store.buffer)].indices.append(store.index)
        for buf, index in loads:
            acc = out.get(id(buf))
            if acc is None:
                acc = out[id(buf)] = _Access(buf, AccessType.READ)
            elif acc.type is AccessType.WRITE:
                acc.type = AccessType.READ_WRITE  # an update: same index as the write
                continue
            if acc.type is AccessType.READ and index not in acc.indices:
                acc.indices.append(index)
        n_levels = len(self.loops)
        for acc in out.values():
            acc.terms = [self.scope.terms(i)[0] for i in acc.indices]
            size = acc.buffer.size
            acc.regions = [access.touched_levels(t, n_levels, size) for t in acc.terms]
        return list(out.values())

    def _levels(self, accesses: list[_Access], compute_ops: float) -> tuple[list, list]:
        """Touched elements per loop level (innermost first), recorded for reuse
        analysis; log2 flops and bytes per level for the intensity curve."""
        ops_list, bytes_list = [], []
        ops = compute_ops
        for level in range(len(self.loops) - 1, -1, -1):
            touch = self.w.touch.get(id(self.loops[level]))
            if touch is None:
                touch = self.w.touch[id(self.loops[level])] = _LoopTouch()
            mem_bytes = 0
            for acc in accesses:
                n = access.union_count([r[level] for r in acc.regions], acc.buffer.size)
                touch.add(acc.buffer, n, acc.elem_bytes)
                mem_bytes += n * acc.elem_bytes
            ops *= self.loops[level].extent
            ops_list.append(log2(ops) if ops > 0 else 0.0)
            bytes_list.append(log2(max(mem_bytes, 1)))
        return ops_list, bytes_list

    def _buffers(self, row: list[float], accesses: list[_Access]) -> None:
        feats = [self._buffer_fields(acc) for acc in accesses]
        feats.sort(key=lambda f: (f[5], f[3]), reverse=True)  # most lines, then bytes
        for i, f in enumerate(feats[:N_BUFFERS]):
            off = OFF_BUFFERS + i * BUFFER_WIDTH
            row[off : off + BUFFER_WIDTH] = f

    def _buffer_fields(self, acc: _Access) -> list[float]:
        eb = acc.elem_bytes
        bytes_ = self.outer_prod * eb * len(acc.indices)
        if self.loops:
            regions = [r[0] for r in acc.regions]
            count = access.union_count(regions, acc.buffer.size)
            unique_bytes = float(count * eb)
            u_lines = sum(access.unique_lines(r, eb) for r in regions)
            u_lines = max(1.0, min(u_lines, unique_bytes / min(eb, access.CACHE_LINE_BYTES)))
            lines, stride = self._lines(acc)
        else:
            unique_bytes, u_lines, lines, stride = float(eb), 1.0, 1.0, 0.0
        reuse_type, dis_iter, dis_bytes, reuse_ct = self._reuse(acc)
        div = max(0.5, reuse_ct)  # no reuse: Ansor's "times 2"
        f = [0.0] * BUFFER_WIDTH
        f[acc.type] = 1.0
        f[3:7] = [bytes_, unique_bytes, lines, u_lines]
        f[7 + reuse_type] = 1.0
        f[10:13] = [dis_iter, dis_bytes, reuse_ct]
        f[13:17] = [bytes_ / div, unique_bytes / div, lines / div, u_lines / div]
        f[17] = stride
        return f

    def _lines(self, acc: _Access) -> tuple[float, float]:
        """Cache lines fetched over all iterations, and the innermost loop's stride."""
        reduce_ratio = 1.0
        s = 0.0
        innermost = len(self.loops) - 1
        level = innermost
        for level in range(innermost, -1, -1):
            var = self.loops[level].var
            s = min((access.stride(t, var) for t in acc.terms), default=0.0)
            if s:
                break
            reduce_ratio *= self.loops[level].extent
        frac = min(1.0, s * acc.elem_bytes / access.CACHE_LINE_BYTES)
        lines = max(1.0, self.outer_prod / reduce_ratio * frac)
        return lines, (s if level == innermost else 0.0)

    def _reuse(self, acc: _Access) -> tuple[int, float, float, float]:
        """Ansor's reuse analysis, innermost loop outwards."""
        dis_iter, dis_bytes = 1.0, -1.0
        used = _vars_used(acc.terms)
        for level in range(len(self.loops) - 1, -1, -1):
            loop = self.loops[level]
            touch = self.w.touch[id(loop)]
            if loop.var not in used:
                if dis_bytes < 0:
                    dis_bytes = float(touch.elem_bytes)
                return ReuseType.LOOP_MULTIPLE_READ, dis_iter, dis_bytes, float(loop.extent)
            dis_iter *= loop.extent
            dis_bytes = float(touch.bytes)
            mine = touch.by_buffer[id(acc.buffer)]
            if len(mine) > 1:
                serial_iter = min(n for n, _ in mine)
                return (
                    ReuseType.SERIAL_MULTIPLE_READ_WRITE,
                    serial_iter / loop.extent,
                    dis_bytes / loop.extent,
                    float(len(mine) - 1),
                )
        return ReuseType.NO_REUSE, 0.0, 0.0, 0.0

    # --------------------------------------------------------- annotations

    def _annotations(self, row: list[float], accesses: list[_Access]) -> None:
        for k, kind in enumerate(_ANNOTATED):
            loops = [f for f in self.loops if f.kind is kind]
            off = OFF_ANNOTATION + k * ANNOTATION_WIDTH
            if not loops:
                row[off + 3 + Pos.NONE] = 1.0
                continue
            row[off] = len(loops)
            row[off + 1] = float(prod(f.extent for f in loops))
            row[off + 2] = loops[-1].extent
            pos = Pos.MIXED if len(loops) > 1 else self._position(loops[-1].var, accesses)
            row[off + 3 + pos] = 1.0

    def _position(self, var: Var, accesses: list[_Access]) -> Pos:
        store_terms = accesses[0].terms[0]
        strides = self.store.buffer.strides or (1,)
        dims = {
            access.dims_of(t.coef, strides)
            for t in store_terms
            if any(v == var for v, _ in t.slopes)
        }
        if len(dims) > 1:
            return Pos.MIXED
        if dims:
            d = dims.pop()
            last = len(strides) - 1
            return (
                Pos.INNER_SPATIAL
                if d == last
                else Pos.OUTER_SPATIAL
                if d == 0
                else Pos.MIDDLE_SPATIAL
            )
        if accesses[0].type is not AccessType.READ_WRITE:
            return Pos.OUTER_SPATIAL
        # loops outside the buffer's allocation re-create it: spatial for it, never reduce
        first = self.w.alloc_outer.get(id(self.store.buffer), (None, 0.0, 0))[2]
        store_vars = _vars_used([store_terms])
        read_vars = _vars_used([t for a in accesses[1:] for t in a.terms])
        reduce_loops = [
            f.var for f in self.loops[first:] if f.var in read_vars and f.var not in store_vars
        ]
        if var not in reduce_loops:
            return Pos.OUTER_SPATIAL
        i = reduce_loops.index(var)
        if i == len(reduce_loops) - 1:
            return Pos.INNER_REDUCE
        return Pos.OUTER_REDUCE if i == 0 else Pos.MIDDLE_REDUCE

    # ------------------------------------------------------ alloc and outer

    def _alloc_and_outer(self, row: list[float]) -> None:
        buf = self.store.buffer
        alloc = self.w.alloc_outer.get(id(buf))
        if alloc is not None:
            outer = alloc[1]
            size = float(buf.size)
            eb = _ELEM_BYTES.get(buf.dtype, 4)
            row[OFF_ALLOC : OFF_ALLOC + 4] = [
                size * eb,
                size * outer,
                outer,
                self.outer_prod / outer,
            ]
        row[OFF_OUTER] = self.outer_prod
        row[OFF_OUTER + 1] = len(self.loops)
        row[OFF_OUTER + 2] = _unroll_step(self.w.unroll_steps, buf)


def _vars_used(term_lists) -> set[Var]:
    return {v for terms in term_lists for t in terms for v, _ in t.slopes}


def _unroll_step(steps: Mapping[str, int], buf: Buffer) -> float:
    if buf.name in steps:
        return float(steps[buf.name])
    base, _, suffix = buf.name.rpartition("_")
    return float(steps.get(base, 0)) if suffix.isdigit() else 0.0


def _curve(row: list[float], compute_ops: float, ops_list: list, bytes_list: list) -> None:
    """Arithmetic intensity (log flops / log bytes) at 10 points of log flops."""
    if compute_ops <= 0 or not ops_list:
        return
    ratios = [o / b if b else 0.0 for o, b in zip(ops_list, bytes_list)]
    pt = 0
    for i in range(CURVE_SAMPLES):
        x = ops_list[-1] * (i + 1) / CURVE_SAMPLES
        while pt < len(ops_list) - 1 and ops_list[pt] < x - 1e-4:
            pt += 1
        if pt == 0 or ops_list[pt] == ops_list[pt - 1]:
            value = ratios[pt]
        else:
            slope = (ratios[pt] - ratios[pt - 1]) / (ops_list[pt] - ops_list[pt - 1])
            value = ratios[pt - 1] + slope * (x - ops_list[pt - 1])
        row[OFF_CURVE + i] = value
