"""Readable loop nests of a schedule state (Ansor's state printing).

Loop extents are the ones lowering gives (bound inference shrinks the loops of
attached stages to the region their consumer needs), so the printer lives beside
lowering; `str(state)` reaches it through the hook this package registers
(`compiler.schedule.state.set_state_formatter`).
"""

from __future__ import annotations

from compiler.lower.layout import LayoutPlanner
from compiler.schedule.stage import Attach, Iter, Stage
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.te.expr import Reduce


def format_state(state: State) -> str:
    """Root stages in order, each loop with its annotation, attached stages inside."""
    lines: list[str] = []
    extents = _inferred_extents(state)
    for k, stage in enumerate(state.stages):
        if stage.is_placeholder:
            lines.append(f"{stage.name} = placeholder{list(stage.op.shape)}")
        elif stage.attach is Attach.INLINE:
            continue
        elif stage.attach is Attach.ROOT:
            _format_stage(state, k, 0, lines, extents)
    return "\n".join(lines)


def _inferred_extents(state: State) -> dict[tuple[int, int], int]:
    """(stage, iter uid) -> loop extent after bound inference (complete states only)."""
    if not state.is_complete:
        return {}
    try:
        planner = LayoutPlanner(state)
        planner.make_params()
        planner.plan()
    except (ValueError, KeyError, AssertionError):  # a printer falls back to declared extents
        return {}
    return {(k, uid): e for k, lay in planner.layout.items() for uid, e in lay.extents.items()}


def _loop_line(it: Iter, pad: str, extent: int | None) -> str:
    ext = "?" if extent is None else extent
    ann = "" if it.annotation is Annotation.NONE else f" ({it.annotation.value})"
    return f"{pad}for {it.name} in 0..{ext}{ann}"


def _format_stage(
    state: State, k: int, depth: int, lines: list[str], extents: dict[tuple[int, int], int]
) -> None:
    stage = state.stages[k]
    if stage.auto_unroll_max_step:
        lines.append("  " * depth + f"# auto_unroll_max_step = {stage.auto_unroll_max_step}")
    for it in stage.iters:
        lines.append(_loop_line(it, "  " * depth, extents.get((k, it.uid), it.extent)))
        depth += 1
        for j, other in enumerate(state.stages):
            if (
                other.attach is Attach.AT
                and other.attach_target == k
                and other.attach_iter == it.uid
            ):
                _format_stage(state, j, depth, lines, extents)
    axes = ", ".join(a.var.name for a in stage.op.axes)
    lines.append("  " * depth + f"{stage.name}[{axes}] = {_body_text(state, stage)}")


def _body_text(state: State, stage: Stage) -> str:
    body = stage.op.body
    text = repr(body.source if isinstance(body, Reduce) else body)
    inlined = [s.name for s in state.stages if s.attach is Attach.INLINE]
    if isinstance(body, Reduce):
        text = f"{body.combiner.value}({text})"
    return text + (
        f"   # inlined: {', '.join(inlined)}"
        if inlined and stage.output in state.dag.outputs
        else ""
    )
