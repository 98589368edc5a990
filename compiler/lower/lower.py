"""Lowering: a schedule State -> a loop-IR PrimFunc.

The pipeline, in order:
  1-3. layout      buffers, bodies with inlined stages expanded, bounds of the
                   attached stages, loop variables and extents, axis values
                   (compiler.lower.layout)
  4. loop nests    each stage's leaf loops, guards for ragged splits, reduction
                   init and update, attached stages inside their loop (here)
  5. simplify      index arithmetic with every loop's range; ragged tiles run apart
                   from whole ones (compiler.lower.passes)
  6. unroll        auto_unroll_max_step marks small loop nests unrolled (passes)
"""

from __future__ import annotations

from compiler.lower.layout import LayoutPlanner, StageLayout
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    Load,
    PrimFunc,
    Stmt,
    Store,
    seq,
)
from compiler.lower.passes import (
    auto_unroll,
    partition_ragged_loops,
    simplify_stmt,
    version_ragged_tiles,
)
from compiler.schedule.stage import Attach, Iter, IterType, Stage
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.schedule.transforms import identity_element
from compiler.te.constructors import logical_and
from compiler.te.expr import BinOp, Expr, FloatImm, IntImm, Reduce, Select, TensorRead, Var
from compiler.te.kinds import BinOpKind, ReduceKind
from compiler.te.traverse import children, free_vars, rebuild, walk

_KIND = {
    Annotation.NONE: ForKind.SERIAL,
    Annotation.PARALLEL: ForKind.PARALLEL,
    Annotation.VECTORIZE: ForKind.VECTORIZED,
    Annotation.UNROLL: ForKind.UNROLLED,
}


class Lowering(LayoutPlanner):
    """The loop program of a state: its layout planned (LayoutPlanner), then loop nests."""

    def __init__(self, state: State, name: str):
        super().__init__(state)
        self.name = name

    # --------------------------------------------------------- 4. loop nests

    def stage_nest(self, k: int) -> Stmt:
        s, lay = self.stages[k], self.layout[k]
        body = self.body(k)
        mapping = self._axis_mapping(k)
        n = len(s.op.axes)
        local_idx = [v - r.start for v, r in zip(lay.axis_values[:n], lay.region)]
        out_index = self._flat(lay.buffer, local_idx)  # type: ignore[arg-type]
        lanes = self._lane_guards(k)
        guards = [g for g in lay.guards if g not in lanes]
        spatial_guards = [g for g in guards if not _mentions_reduce(g, s, lay)]
        if isinstance(body, Reduce):
            value = _guard_reads(self._loads(body.source, mapping, {}), lanes, lay.buffer)
            update = Store(
                lay.buffer, out_index, _combine(body.combiner, Load(lay.buffer, out_index), value)
            )  # type: ignore[arg-type]
            init = Store(lay.buffer, out_index, identity_element(body.combiner, s.op.dtype))  # type: ignore[arg-type]
            split = next(i for i, it in enumerate(s.iters) if it.type is not IterType.SPATIAL)
            inner_spatial = [it for it in s.iters[split:] if it.type is IterType.SPATIAL]
            init_nest = self._loops(k, inner_spatial, _guard(init, spatial_guards), attach=False)
            main_nest = self._loops(k, list(s.iters[split:]), _guard(update, guards))
            return self._loops(k, list(s.iters[:split]), seq(init_nest, main_nest))
        value = _guard_reads(self._loads(body, mapping, {}), lanes, lay.buffer)
        store = Store(lay.buffer, out_index, value)  # type: ignore[arg-type]
        return self._loops(k, list(s.iters), _guard(store, guards))

    def _lane_guards(self, k: int) -> list[Expr]:
        """The guards of an attached stage's box sticking out of its tensor that test its
        SIMD loop's lanes (a register tile's partial columns). They guard the stage's
        reads instead of its stores: the box is the local buffer's own shape, so every
        lane has its element, and the stage runs as whole vectors with masked loads
        where a guarded store would run lane by lane (LLVM keeps no masked accumulator
        in registers). The consumer's guarded store drops the lanes past the tensor."""
        s, lay = self.stages[k], self.layout[k]
        simd = {lay.loop_vars[it.uid] for it in s.iters if it.annotation is Annotation.VECTORIZE}
        return [g for g in lay.range_guards if simd & free_vars(g)]

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
            body = partition_ragged_loops(body, self.simp)
            body = simplify_stmt(version_ragged_tiles(body, self.simp), self.simp)
        body = auto_unroll(body, self._unroll_limits())
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


def _mentions_reduce(g: Expr, s: Stage, lay: StageLayout) -> bool:
    reduce_vars = {lay.loop_vars[it.uid] for it in s.iters if it.type is not IterType.SPATIAL}
    return any(isinstance(n, Var) and n in reduce_vars for n in walk(g))


def _combine(kind: ReduceKind, acc: Expr, value: Expr) -> Expr:
    op = {
        ReduceKind.SUM: BinOpKind.ADD,
        ReduceKind.MAX: BinOpKind.MAX,
        ReduceKind.MIN: BinOpKind.MIN,
    }
    return BinOp(op[kind], acc, value)


def _guard_reads(e: Expr, guards: list[Expr], own: Buffer) -> Expr:
    """`e` with each load of another buffer than `own` whose index shares a variable with
    `guards` done only where they hold (0 elsewhere); a load the guards do not index
    (a broadcast row element) reads where it did."""
    if not guards:
        return e
    cond = logical_and(*guards)
    guard_vars = free_vars(cond)

    def visit(x: Expr) -> Expr:
        if isinstance(x, Load) and x.buffer is not own and guard_vars & free_vars(x.index):
            zero = FloatImm(0.0, x.dtype) if x.dtype.startswith("float") else IntImm(0, x.dtype)
            return Select(cond, x, zero)
        kids = children(x)
        new = tuple(visit(c) for c in kids)
        return x if all(a is b for a, b in zip(kids, new)) else rebuild(x, new)

    return visit(e)


def _guard(stmt: Stmt, guards: list[Expr]) -> Stmt:
    return IfThenElse(logical_and(*guards), stmt) if guards else stmt
