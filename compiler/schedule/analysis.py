"""Questions about a stage in a schedule state, shared by the default schedule
and the sketch rules (REFERENCE.md §1)."""

from __future__ import annotations

from compiler.schedule.state import Attach, State
from compiler.te.dag import is_strictly_inlineable, needs_multi_level_tiling, needs_rfactor
from compiler.te.expr import TensorRead
from compiler.te.traverse import walk


def elementwise_consumer(s: State, k: int) -> int | None:
    """The single root consumer of stage k that reads it element by element
    (looking through inlined stages), not itself a reduction."""
    consumers = s.consumers(k)
    if len(consumers) != 1:
        return None
    c = consumers[0]
    cst, pst = s.stages[c], s.stages[k]
    if cst.attach is not Attach.ROOT or cst.op.reduce_axes or cst.op.shape != pst.op.shape:
        return None
    axis_vars = [a.var for a in cst.op.axes]
    for node in walk(s.body(c)):
        is_read = isinstance(node, TensorRead) and node.tensor is pst.output
        if is_read and list(node.indices) != axis_vars:
            return None
    return c


def should_inline(s: State, k: int) -> bool:
    st = s.stages[k]
    return not st.is_placeholder and not s.is_output(k) and is_strictly_inlineable(st.op)


def needs_tiling(s: State, k: int) -> bool:
    st = s.stages[k]
    return not st.is_placeholder and needs_multi_level_tiling(st.op)


def wants_rfactor(s: State, k: int, cores: int) -> bool:
    st = s.stages[k]
    return not st.is_placeholder and st.op.tag != "cache_copy" and needs_rfactor(st.op, cores)
