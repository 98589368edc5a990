"""Moving a program's tile sizes into another sketch (a deviation from Ansor).

Ansor's mutations never change a program's sketch, and its population settles
on one sketch within two or three rounds: in a from-scratch conv28c run, 61-63
of every round's 64 candidates came from one cache-write sketch from the third
round on, whatever the other sketches' best programs would have been. Whether
the conv is tiled through a local cache, written directly, or tiled into the
stage that reads it back as NCHW, the derivation rules tile it with the same
holes (the same loops split the same ways, in the same order), so a program's
tile sizes fit every sketch that shares its holes. `transplant` fills another
sketch's holes with them and annotates the result the way the program was
annotated: the same compute location (by stage and loop name) for the stages
it moved, the same auto-unroll per reduction stage, the outer loops fused and
parallel as `annotate.parallelize` does, the widest vector loops.

What it found, by hand, on a conv28c run's best program (a cache-write
program at 0.91x onnxruntime, timed side by side): the same tile sizes in the
sketch that writes the conv directly ran at 1.03x, in the sketches fusing
the conv into its NCHW read-back at 0.96x and 0.87x. The policy measures the
best program's transplants (compiler/search/policy.py `SketchPolicy`). From
scratch on the two ResNet-18 convs, seeds 0-3, 1000 trials, it beat the same
search without them in 7 of 8 runs, side by side with onnxruntime median 0.967x
against 0.925x (conv28c) and 1.055x against 0.987x (conv56c): docs/benchmarks.md#search-quality.
"""

from __future__ import annotations

from dataclasses import replace

from compiler.schedule.stage import Attach
from compiler.schedule.state import State
from compiler.schedule.steps import (
    ComputeAt,
    ComputeInline,
    Pragma,
    ScheduleError,
    Split,
    Step,
)
from compiler.search.annotate import AnnotateConfig, parallelize, vectorize


def hole_indices(sketch: State) -> list[int]:
    """Positions of the sketch's Split steps with holes (the tile sizes to fill)."""
    return [i for i, st in enumerate(sketch.steps) if isinstance(st, Split) and None in st.factors]


def hole_signature(sketch: State) -> tuple[tuple[str, int | None, int], ...]:
    """Per hole: the split loop's name, its extent and the number of factors. Two
    sketches with the same signature take the same tile sizes."""
    state, out = State.initial(sketch.dag), []
    for st in sketch.steps:
        if isinstance(st, Split) and None in st.factors:
            it = state.stages[st.stage].iters[st.iter]
            out.append((it.name, it.extent, len(st.factors)))
        state = state.apply(st)
    return tuple(out)


def sketch_index(state: State, sketches: list[State]) -> int | None:
    """The sketch `state` was annotated from: its steps start with the sketch's,
    every hole filled (mutations keep the positions), or None. A sketch can extend
    another (the packed-layout variants add a step): the longest one that fits."""
    fits = [
        k
        for k, sketch in enumerate(sketches)
        if len(state.steps) >= len(sketch.steps)
        and all(_fills(a, b) for a, b in zip(state.steps, sketch.steps))
    ]
    return max(fits, key=lambda k: len(sketches[k].steps), default=None)


def _fills(step: Step, sketch_step: Step) -> bool:
    if step == sketch_step:
        return True
    return (
        isinstance(step, Split)
        and isinstance(sketch_step, Split)
        and None in sketch_step.factors
        and (step.stage, step.iter, len(step.factors))
        == (sketch_step.stage, sketch_step.iter, len(sketch_step.factors))
    )


def compatible(sketches: list[State]) -> list[list[int]]:
    """Per sketch, the other sketches sharing its hole signature."""
    sigs = [hole_signature(s) for s in sketches]
    return [
        [j for j, other in enumerate(sigs) if j != k and other == sig and sig]
        for k, sig in enumerate(sigs)
    ]


def transplant(
    state: State, source: State, target: State, cfg: AnnotateConfig | None = None
) -> State | None:
    """`state` (a program of sketch `source`) with its tile sizes in sketch `target`,
    annotated as `state` was (see the module docstring); None when that is illegal."""
    cfg = cfg or AnnotateConfig()
    steps = list(target.steps)
    for i, j in zip(hole_indices(source), hole_indices(target), strict=True):
        src = state.steps[i]
        assert isinstance(src, Split)
        steps[j] = replace(steps[j], factors=src.factors)
    try:
        out = State.replay(state.dag, steps)
        out = _copy_compute_locations(out, state, len(source.steps))
        out = parallelize(out, cfg)
        out = _copy_unroll(out, state)
        return vectorize(out, None, cfg)  # the widest vector loops
    except ScheduleError:
        return None


def _copy_compute_locations(out: State, state: State, start: int) -> State:
    """Replay `state`'s compute-location steps after its sketch (from `start`) on
    `out`, stages and loops found by name; a location `out` lacks is left as it is."""
    before = State.replay(state.dag, state.steps[:start])
    for st in state.steps[start:]:
        if isinstance(st, (ComputeAt, ComputeInline)):
            out = _moved(out, before, st)
        before = before.apply(st)
    return out


def _moved(out: State, before: State, st: ComputeAt | ComputeInline) -> State:
    try:
        k = out.stage_index(before.stages[st.stage].name)
    except KeyError:
        return out
    if isinstance(st, ComputeInline):
        return _try(out, ComputeInline(k))
    consumers = out.consumers(k)
    target_name = before.stages[st.target].name
    named = [c for c in consumers if out.stages[c].name == target_name]
    if not named and len(consumers) != 1:
        return out
    c = (named or list(consumers))[0]
    loop = before.stages[st.target].iters[st.target_iter].name
    names = [it.name for it in out.stages[c].iters]
    return _try(out, ComputeAt(k, c, names.index(loop))) if loop in names else out


def _try(state: State, step: Step) -> State:
    try:
        return state.apply(step)
    except ScheduleError:
        return state


def _copy_unroll(out: State, state: State) -> State:
    """The auto-unroll of `state`'s reduction stages, in order, on `out`'s."""
    for k, j in zip(_reduction_stages(state), _reduction_stages(out)):
        if state.stages[k].auto_unroll_max_step:
            out = out.apply(
                Pragma(j, 0, "auto_unroll_max_step", state.stages[k].auto_unroll_max_step)
            )
    return out


def _reduction_stages(s: State) -> list[int]:
    return [
        k
        for k, st in enumerate(s.stages)
        if not st.is_placeholder and st.attach is not Attach.INLINE and st.op.reduce_axes
    ]
