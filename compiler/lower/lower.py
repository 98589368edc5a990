"""Lowering: a schedule State -> a loop-IR PrimFunc.

The pipeline, in order (each step a function below):
  1. buffers       inputs and outputs become parameters, root intermediates
                   full-size temporaries, attached stages local scratch
  2. bodies        reads of inlined stages are expanded in place
  3. bounds        attached stages get the region their consumer needs
  4. loop nests    each stage's leaf loops, axis values rebuilt from the
                   split/fuse relations, guards for ragged splits, reduction
                   init and update, attached stages inside their loop
  5. simplify      index arithmetic with every loop's range
  6. unroll        auto_unroll_max_step marks small loop nests unrolled
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from compiler.lower.bounds import DimRegion, infer_region
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    Load,
    PrimFunc,
    Scope,
    Seq,
    Stmt,
    Store,
    seq,
)
from compiler.lower.simplify import Simplifier
from compiler.schedule.state import Attach, Iter, IterType, SplitRel, Stage, State
from compiler.schedule.steps import Annotation, ScheduleError
from compiler.schedule.transforms import identity_element
from compiler.te.expr import (
    BinOp,
    BinOpKind,
    Expr,
    IntImm,
    Reduce,
    ReduceKind,
    TensorRead,
    Var,
    logical_and,
)
from compiler.te.traverse import children, rebuild, substitute

_KIND = {
    Annotation.NONE: ForKind.SERIAL,
    Annotation.PARALLEL: ForKind.PARALLEL,
    Annotation.VECTORIZE: ForKind.VECTORIZED,
    Annotation.UNROLL: ForKind.UNROLLED,
}


@dataclass
class StageLayout:
    """Where a stage's values live and how its loops map to its axes."""

    buffer: Buffer | None = None
    region: tuple[DimRegion, ...] = ()
    loop_vars: dict[int, Var] = field(default_factory=dict)  # iter uid -> loop var
    extents: dict[int, int] = field(default_factory=dict)  # iter uid -> extent
    axis_values: list[Expr] = field(default_factory=list)  # root axes, absolute
    guards: list[Expr] = field(default_factory=list)


class Lowering:
    def __init__(self, state: State, name: str):
        if not state.is_complete:
            raise ScheduleError("the state still has unfilled split factors (a sketch)")
        self.state = state
        self.name = name
        self.stages = state.stages
        self.stage_of = state.stage_of
        self.layout: dict[int, StageLayout] = {}
        # one simplifier, its ranges filled in as loops are made: an expression it sees only
        # uses loops made before, whose ranges never change, so its memo stays right
        self.simp = Simplifier()
        self.ranges = self.simp.ranges
        self._names: set[str] = set()

    # ------------------------------------------------------------ 1. buffers

    def make_params(self) -> tuple[Buffer, ...]:
        params = []
        for k, s in enumerate(self.stages):
            if s.is_placeholder:
                self.layout[k] = StageLayout(self._buffer(s, s.op.shape, Scope.GLOBAL))
                self.layout[k].region = _full_region(s.op.shape)
                params.append(self.layout[k].buffer)
        for out in self.state.dag.outputs:
            k = self.stage_of[id(out)]
            self.layout[k] = StageLayout(self._buffer(self.stages[k], out.shape, Scope.GLOBAL))
            params.append(self.layout[k].buffer)
        return tuple(params)  # type: ignore[arg-type]

    def _buffer(self, s: Stage, shape: tuple[int, ...], scope: Scope) -> Buffer:
        return Buffer(self._unique(s.name), tuple(shape), s.op.dtype, scope)

    def _unique(self, name: str) -> str:
        base = re.sub(r"\W", "_", name) or "v"
        out, n = base, 1
        while out in self._names:
            n += 1
            out = f"{base}_{n}"
        self._names.add(out)
        return out

    # ------------------------------------------------------------- 2. bodies

    def body(self, k: int) -> Expr:
        """Stage k's body with every read of an inlined stage expanded."""
        return self.state.body(k)

    # ------------------------------------------------------------- 3. bounds

    def plan(self) -> None:
        """Loop variables, extents, axis values and buffers, consumers first."""
        for k in reversed(range(len(self.stages))):
            s = self.stages[k]
            if s.is_placeholder or s.attach is Attach.INLINE:
                continue
            lay = self.layout.setdefault(k, StageLayout())
            if s.attach is Attach.AT:
                lay.region = self._region(k)
                lay.buffer = self._buffer(s, tuple(r.extent for r in lay.region), Scope.LOCAL)
            else:
                lay.region = _full_region(s.op.shape)
                if lay.buffer is None:
                    lay.buffer = self._buffer(s, s.op.shape, Scope.GLOBAL)
            self._plan_loops(k, lay)

    def _region(self, k: int) -> tuple[DimRegion, ...]:
        s = self.stages[k]
        t = s.attach_target
        target, t_lay = self.stages[t], self.layout[t]
        pos = target.iter_index(s.attach_iter)
        varying = {t_lay.loop_vars[it.uid] for it in target.iters[pos + 1 :]}
        mapping = self._axis_mapping(t)
        reads = [
            tuple(substitute(i, mapping) for i in r.indices)
            for r in _reads_of(self.body(t), s.output)
        ]
        if not reads:
            raise ScheduleError(f"{target.name} does not read {s.name}")
        return infer_region(reads, s.op.shape, varying, self.simp)

    def _plan_loops(self, k: int, lay: StageLayout) -> None:
        s = self.stages[k]
        root_ext = [r.extent for r in lay.region] + [a.extent for a in s.op.reduce_axes]
        ext = {it.uid: e for it, e in zip(s.root_iters, root_ext)}
        for rel in s.relations:
            if isinstance(rel, SplitRel):
                # a part never runs longer than the parent needs (bounds of small regions)
                need, stride = ext[rel.parent], 1
                for c, f in reversed(list(zip(rel.children[1:], rel.factors))):
                    ext[c] = min(f, -(-need // stride))  # type: ignore[type-var]
                    stride *= f  # type: ignore[operator]
                ext[rel.children[0]] = -(-need // stride)
            else:
                ext[rel.child] = prod(ext[p] for p in rel.parents)
        lay.extents = ext
        values: dict[int, Expr] = {}
        for it in s.iters:
            var = Var(self._unique(f"{s.name}_{it.name}"))
            lay.loop_vars[it.uid] = var
            self.ranges[var] = (0, ext[it.uid] - 1)
            values[it.uid] = IntImm(0) if ext[it.uid] == 1 else var
        for rel in reversed(s.relations):
            self._invert(rel, values, ext, lay.guards)
        roots = [values[it.uid] for it in s.root_iters]
        n = len(s.op.axes)
        lay.axis_values = [r.start + v for r, v in zip(lay.region, roots[:n])] + roots[n:]
        self._range_guards(s, lay)

    def _invert(self, rel, values: dict[int, Expr], ext: dict[int, int], guards: list) -> None:
        if isinstance(rel, SplitRel):
            value: Expr = values[rel.children[0]]
            for c in rel.children[1:]:
                value = value * ext[c] + values[c]
            if prod(ext[c] for c in rel.children) != ext[rel.parent]:
                cond = value < ext[rel.parent]
                if cond not in guards:
                    guards.append(cond)
            values[rel.parent] = value
        else:
            rest = values[rel.child]
            for p in reversed(rel.parents[1:]):
                values[p] = rest % ext[p]
                rest = rest // ext[p]
            values[rel.parents[0]] = rest

    def _range_guards(self, s: Stage, lay: StageLayout) -> None:
        """An attached stage's box may stick out of its tensor: skip those points."""
        if s.attach is not Attach.AT:
            return
        for absolute, dim in zip(lay.axis_values, s.op.shape):  # the box's start + local index
            lo, hi = self.simp.bound(absolute)
            if lo < 0:
                lay.guards.append(absolute >= 0)
            if hi > dim - 1:
                lay.guards.append(absolute < dim)

    def _axis_mapping(self, k: int) -> dict[Var, Expr]:
        s, lay = self.stages[k], self.layout[k]
        axes = list(s.op.axes) + list(s.op.reduce_axes)
        return {a.var: v for a, v in zip(axes, lay.axis_values)}

    # --------------------------------------------------------- 4. loop nests

    def stage_nest(self, k: int) -> Stmt:
        s, lay = self.stages[k], self.layout[k]
        body = self.body(k)
        mapping = self._axis_mapping(k)
        n = len(s.op.axes)
        local_idx = [v - r.start for v, r in zip(lay.axis_values[:n], lay.region)]
        out_index = self._flat(lay.buffer, local_idx)  # type: ignore[arg-type]
        spatial_guards = [g for g in lay.guards if not _mentions_reduce(g, s, lay)]
        if isinstance(body, Reduce):
            value = self._loads(body.source, mapping, {})
            update = Store(
                lay.buffer, out_index, _combine(body.combiner, Load(lay.buffer, out_index), value)
            )  # type: ignore[arg-type]
            init = Store(lay.buffer, out_index, identity_element(body.combiner, s.op.dtype))  # type: ignore[arg-type]
            split = next(i for i, it in enumerate(s.iters) if it.type is not IterType.SPATIAL)
            inner_spatial = [it for it in s.iters[split:] if it.type is IterType.SPATIAL]
            init_nest = self._loops(k, inner_spatial, _guard(init, spatial_guards), attach=False)
            main_nest = self._loops(k, list(s.iters[split:]), _guard(update, lay.guards))
            return self._loops(k, list(s.iters[:split]), seq(init_nest, main_nest))
        value = self._loads(body, mapping, {})
        store = Store(lay.buffer, out_index, value)  # type: ignore[arg-type]
        return self._loops(k, list(s.iters), _guard(store, lay.guards))

    def _loops(self, k: int, iters: list[Iter], inner: Stmt, attach: bool = True) -> Stmt:
        lay = self.layout[k]
        out = inner
        for it in reversed(iters):
            if attach:
                out = self._with_attached(k, it, out)
            extent = lay.extents[it.uid]
            if extent > 1:
                out = For(lay.loop_vars[it.uid], extent, _KIND[it.annotation], out)
        return out

    def _with_attached(self, k: int, it: Iter, rest: Stmt) -> Stmt:
        attached = [
            j
            for j, s in enumerate(self.stages)
            if s.attach is Attach.AT and s.attach_target == k and s.attach_iter == it.uid
        ]
        for j in reversed(attached):
            rest = Allocate(self.layout[j].buffer, seq(self.stage_nest(j), rest))  # type: ignore[arg-type]
        return rest

    def _loads(self, e: Expr, mapping: dict[Var, Expr], memo: dict[int, Expr]) -> Expr:
        """`substitute(e, mapping)` with each TensorRead -> Load from the producer's buffer
        (local boxes are offset), in one pass; unchanged subtrees are shared, not copied."""
        got = memo.get(id(e))
        if got is not None:
            return got
        t = type(e)
        out: Expr
        if t is Var:
            out = mapping.get(e, e)  # type: ignore[arg-type]
        elif t is TensorRead:
            lay = self.layout[self.stage_of[id(e.tensor)]]  # type: ignore[attr-defined]
            idx = [self._loads(i, mapping, memo) for i in e.indices]  # type: ignore[attr-defined]
            local = [i - r.start for i, r in zip(idx, lay.region)]
            out = Load(lay.buffer, self._flat(lay.buffer, local))  # type: ignore[arg-type]
        else:
            kids = children(e)
            new = tuple(self._loads(c, mapping, memo) for c in kids)
            out = e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)
        memo[id(e)] = out
        return out

    @staticmethod
    def _flat(buf: Buffer, idx: list[Expr]) -> Expr:
        out: Expr = IntImm(0)
        for i, stride in zip(idx, buf.strides):
            out = out + i * stride
        return out

    # ------------------------------------------------------------------ run

    def run(self, simplify: bool = True) -> PrimFunc:
        params = self.make_params()
        self.plan()
        roots = [
            k for k, s in enumerate(self.stages) if not s.is_placeholder and s.attach is Attach.ROOT
        ]
        body = seq(*[self.stage_nest(k) for k in roots])
        param_ids = {id(p) for p in params}
        for k in reversed(roots):
            buf = self.layout[k].buffer
            if id(buf) not in param_ids:
                body = Allocate(buf, body)  # type: ignore[arg-type]
        if simplify:
            body = _simplify_stmt(body, self.simp)
        body = _auto_unroll(body, self._unroll_limits())
        return PrimFunc(self.name, params, body)

    def _unroll_limits(self) -> dict[Var, int]:
        """Outermost loop var of each stage with a pragma -> its max step."""
        out = {}
        for k, s in enumerate(self.stages):
            if s.auto_unroll_max_step and k in self.layout and self.layout[k].loop_vars:
                for it in s.iters:
                    if self.layout[k].extents[it.uid] > 1:
                        out[self.layout[k].loop_vars[it.uid]] = s.auto_unroll_max_step
                        break
        return out


def lower(state: State, name: str = "kernel", *, simplify: bool = True) -> PrimFunc:
    """The loop program of a complete schedule state.

    Parameters are the DAG's placeholders in order, then its outputs.
    `simplify=False` skips the last pass (index arithmetic, guards proven true):
    the program is the same, written longer; the cost model's features use it.
    """
    return Lowering(state, name).run(simplify)


# -------------------------------------------------------------- helpers


def _full_region(shape: tuple[int, ...]) -> tuple[DimRegion, ...]:
    return tuple(DimRegion(IntImm(0), d) for d in shape)


def _reads_of(body: Expr, tensor) -> list[TensorRead]:
    """The reads of `tensor` in `body`, a node shared by several parents once."""
    from compiler.te.traverse import walk

    seen: dict[int, TensorRead] = {}
    for n in walk(body):
        if isinstance(n, TensorRead) and n.tensor is tensor:
            seen.setdefault(id(n), n)
    return list(seen.values())


def _mentions_reduce(g: Expr, s: Stage, lay: StageLayout) -> bool:
    from compiler.te.traverse import walk

    reduce_vars = {lay.loop_vars[it.uid] for it in s.iters if it.type is not IterType.SPATIAL}
    return any(isinstance(n, Var) and n in reduce_vars for n in walk(g))


def _combine(kind: ReduceKind, acc: Expr, value: Expr) -> Expr:
    op = {
        ReduceKind.SUM: BinOpKind.ADD,
        ReduceKind.MAX: BinOpKind.MAX,
        ReduceKind.MIN: BinOpKind.MIN,
    }
    return BinOp(op[kind], acc, value)


def _guard(stmt: Stmt, guards: list[Expr]) -> Stmt:
    return IfThenElse(logical_and(*guards), stmt) if guards else stmt


def _simplify_stmt(s: Stmt, simp: Simplifier) -> Stmt:
    match s:
        case For(var, extent, kind, body):
            return For(var, extent, kind, _simplify_stmt(body, simp))
        case Seq(stmts):
            return seq(*[_simplify_stmt(x, simp) for x in stmts])
        case Store(buf, index, value):
            return Store(buf, simp.simplify(index), simp.simplify(value))
        case IfThenElse(cond, then_case, else_case):
            c = simp.simplify(cond)
            if isinstance(c, IntImm):
                chosen = then_case if c.value else else_case
                return _simplify_stmt(chosen, simp) if chosen is not None else seq()
            other = None if else_case is None else _simplify_stmt(else_case, simp)
            return IfThenElse(c, _simplify_stmt(then_case, simp), other)
        case Allocate(buf, body):
            return Allocate(buf, _simplify_stmt(body, simp))
    return s


def _steps(s: Stmt) -> int:
    """Statement executions of a loop nest (vector loops count once)."""
    match s:
        case For(_, extent, kind, body):
            return _steps(body) * (1 if kind is ForKind.VECTORIZED else extent)
        case Seq(stmts):
            return sum(_steps(x) for x in stmts)
        case IfThenElse(_, then_case, else_case):
            return _steps(then_case) + (0 if else_case is None else _steps(else_case))
        case Allocate(_, body):
            return _steps(body)
    return 1


def _auto_unroll(s: Stmt, limits: dict[Var, int], limit: int = 0) -> Stmt:
    match s:
        case For(var, extent, kind, body):
            limit = limits.get(var, limit)
            body = _auto_unroll(body, limits, limit)
            if kind is ForKind.SERIAL and limit and extent * _steps(body) <= limit:
                kind = ForKind.UNROLLED
            return For(var, extent, kind, body)
        case Seq(stmts):
            return seq(*[_auto_unroll(x, limits, limit) for x in stmts])
        case IfThenElse(cond, then_case, else_case):
            other = None if else_case is None else _auto_unroll(else_case, limits, limit)
            return IfThenElse(cond, _auto_unroll(then_case, limits, limit), other)
        case Allocate(buf, body):
            return Allocate(buf, _auto_unroll(body, limits, limit))
    return s
