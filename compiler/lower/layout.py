"""Lowering's plan: where each stage's values live and how its loops map to its axes.

Steps 1-3 of lowering (compiler.lower.lower), in order:
  1. buffers       inputs and outputs become parameters, root intermediates
                   full-size temporaries, attached stages local scratch
  2. bodies        reads of inlined stages are expanded in place
  3. bounds        attached stages get the region their consumer needs; each
                   stage's loops get a variable and an extent, its axes their
                   values rebuilt from the split/fuse relations, guards for
                   ragged splits and for boxes sticking out of their tensor

The loop-nest printer (compiler.lower.printer) uses the plan's extents alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod

from compiler.lower.bounds import DimRegion, infer_region
from compiler.lower.loop_ir import Buffer, Scope
from compiler.lower.simplify import Simplifier
from compiler.schedule.stage import Attach, SplitRel, Stage
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError
from compiler.te.expr import Expr, IntImm, TensorRead, Var
from compiler.te.traverse import substitute, walk


@dataclass
class StageLayout:
    """Where a stage's values live and how its loops map to its axes."""

    buffer: Buffer | None = None
    region: tuple[DimRegion, ...] = ()
    loop_vars: dict[int, Var] = field(default_factory=dict)  # iter uid -> loop var
    extents: dict[int, int] = field(default_factory=dict)  # iter uid -> extent
    axis_values: list[Expr] = field(default_factory=list)  # root axes, absolute
    guards: list[Expr] = field(default_factory=list)
    range_guards: list[Expr] = field(default_factory=list)  # those of an attached box


class LayoutPlanner:
    """Buffers, regions, loop variables, extents and axis values of a complete state's
    stages (`layout`), planned by `make_params()` then `plan()`."""

    def __init__(self, state: State):
        if not state.is_complete:
            raise ScheduleError("the state still has unfilled split factors (a sketch)")
        self.state = state
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
        reads = self._mapped_reads(t, s.output)
        if not reads:
            raise ScheduleError(f"{target.name} does not read {s.name}")
        for c in self.state.consumers(k):  # others, computed inside the target's loop
            if c == t:
                continue
            if not self.state.computed_inside(c, t, pos):
                raise ScheduleError(f"{self.stages[c].name} reads {s.name} outside its loop")
            reads += self._mapped_reads(c, s.output)
            while c != t:  # c's loops, and those of the stages it is computed in
                varying |= set(self.layout[c].loop_vars.values())
                c = self.stages[c].attach_target
        return infer_region(reads, s.op.shape, varying, self.simp)

    def _mapped_reads(self, c: int, tensor) -> list[tuple[Expr, ...]]:
        """Stage c's reads of `tensor`, indexed by c's loop variables."""
        mapping = self._axis_mapping(c)
        return [
            tuple(substitute(i, mapping) for i in r.indices)
            for r in _reads_of(self.body(c), tensor)
        ]

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
                lay.range_guards.append(absolute >= 0)
            if hi > dim - 1:
                lay.range_guards.append(absolute < dim)
        lay.guards.extend(lay.range_guards)

    def _axis_mapping(self, k: int) -> dict[Var, Expr]:
        s, lay = self.stages[k], self.layout[k]
        axes = list(s.op.axes) + list(s.op.reduce_axes)
        return {a.var: v for a, v in zip(axes, lay.axis_values)}


def _full_region(shape: tuple[int, ...]) -> tuple[DimRegion, ...]:
    return tuple(DimRegion(IntImm(0), d) for d in shape)


def _reads_of(body: Expr, tensor) -> list[TensorRead]:
    """The reads of `tensor` in `body`, a node shared by several parents once."""
    seen: dict[int, TensorRead] = {}
    for n in walk(body):
        if isinstance(n, TensorRead) and n.tensor is tensor:
            seen.setdefault(id(n), n)
    return list(seen.values())
