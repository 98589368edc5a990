"""Schedule state: the DAG's stages (compiler.schedule.stage: loop iterators, their
relations to the compute axes, where each stage is computed) and the steps that made
them. A State is fully determined by (DAG, step list); `State.replay` rebuilds it from
records. How each step changes the stages is in compiler.schedule.apply_step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property

from compiler.schedule.apply_step import apply_step
from compiler.schedule.stage import Attach, SplitRel, Stage, stage_from_op
from compiler.schedule.steps import ScheduleError, Step
from compiler.te.dag import ComputeDAG
from compiler.te.expr import Expr, TensorRead
from compiler.te.tensor import Tensor
from compiler.te.traverse import children, rebuild, substitute

_formatter: Callable[[State], str] | None = None


def set_state_formatter(formatter: Callable[[State], str]) -> None:
    """Make `str(state)` call `formatter`: compiler.lower registers its loop-nest printer
    (whose loop extents come from lowering, a layer above this one)."""
    global _formatter
    _formatter = formatter


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
            stages = apply_step(self, step)
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

    def computed_inside(self, c: int, target: int, target_iter: int) -> bool:
        """Stage c is computed, through its chain of attach points, inside loop
        `target_iter` of stage `target` (at that loop or deeper)."""
        seen = set()
        while self.stages[c].attach is Attach.AT and c not in seen:
            seen.add(c)
            s = self.stages[c]
            if s.attach_target == target:
                return self.stages[target].iter_index(s.attach_iter) >= target_iter
            c = s.attach_target
        return False

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
        """The loop nests (compiler.lower.printer, registered when compiler.lower is
        imported); without it, the stages and the step list."""
        if _formatter is not None:
            return _formatter(self)
        lines = [f"stages {', '.join(s.name for s in self.stages)}; steps:"]
        lines += [f"  {step.describe()}" for step in self.steps]
        return "\n".join(lines)
