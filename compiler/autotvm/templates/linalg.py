"""Template for matrix products (matmul, dense incl. batch 1, batch_matmul) with their
fused element-wise epilogue.

The schedule space holds the GotoBLAS-style kernel that reaches the library
here (bench_matmul.py): the tile stage's loops [batch, i_o @ j_o (parallel),
i_m, j_m, i_r, j_r]; the product computed inside them, at the block loop (its
tile i_m*i_r x j_m*j_r, accumulated in a local buffer, k blocked) or at the j_m
loop (a register tile i_r x j_r over all of k); B read from panels of j_r
columns ([N/j_r, K, j_r], packed once per call, or at compile time for
constant weights).

Knobs: tile_i [i_o, i_m, i_r <= 16], tile_j [j_o, j_m, 8 <= j_r <= 64 (vector)], tile_k
[k_o, k_i], local_order (where the k blocks go among the tile loops), local_at
(block / tile), pack (none / panel), ann_tile (i_r unrolled or not),
auto_unroll.
"""

from __future__ import annotations

from compiler.autotvm.space import Config
from compiler.autotvm.templates.helpers import (
    Sched,
    anchor_setup,
    at_most,
    packable_inputs,
    vector_width,
)
from compiler.autotvm.templates.registry import register_template
from compiler.ops.tags import BATCH_MATMUL, DENSE, MATMUL
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.te.dag import ComputeDAG

TAGS = (MATMUL, DENSE, BATCH_MATMUL)
LOCAL_ORDERS = (
    ("ko", "im", "jm", "ki"),  # k blocks outermost: a block of B rows stays in cache
    ("ko", "jm", "im", "ki"),
    ("im", "jm", "ko", "ki"),  # one tile at a time over all of k
)


@register_template("matmul", TAGS)
def matmul_template(cfg: Config, dag: ComputeDAG) -> State:
    a = anchor_setup(dag, TAGS)
    sch, local, out = a.sch, a.anchor, a.outer
    op = sch.state.stages[local].op
    n = len(op.axes)
    m, n_cols, k_extent = op.shape[-2], op.shape[-1], op.reduce_axes[0].extent
    ti = cfg.define_split("tile_i", m, num_outputs=3, filter=at_most(16), fallback=[-1, 32, 8])
    tj = cfg.define_split(
        "tile_j", n_cols, num_outputs=3, filter=vector_width(n_cols), fallback=[-1, 1, 32]
    )
    tk = cfg.define_split("tile_k", k_extent, num_outputs=2, fallback=[-1, k_extent])
    order = cfg.define_reorder(
        "local_order",
        LOCAL_ORDERS[0],
        "candidate",
        candidate=LOCAL_ORDERS,
        fallback=LOCAL_ORDERS[2],
    )
    at = cfg.define_knob("local_at", ["block", "tile"], fallback="tile").val
    packable = packable_inputs(sch.state, local)
    # packing B every call pays off over many rows of A (constant weights: packed once)
    packs = ["none", "panel"] if packable else ["none"]
    pack = cfg.define_knob("pack", packs, fallback="panel" if m >= 16 and packable else "none")
    ann = cfg.define_annotate("ann_tile", ["i_r"], "try_unroll", fallback=["unroll"])
    unroll = cfg.define_knob("auto_unroll", [0, 16, 64], fallback=0).val

    # the product: [batch..., i_o, i_m, i_r, j_o, j_m, j_r, k_o, k_i]
    batch = list(range(n - 2))
    i_o, i_m, i_r = sch.split(local, n - 2, ti.factors)
    j_o, j_m, j_r = sch.split(local, n - 1, tj.factors)
    j_split = sch.last_step
    k_o, k_i = sch.split(local, n, tk.factors)
    if pack.val == "panel":
        packed = sch.pack_layout(local, packable[0], j_split, 2)
        local, out = local + 1, out + 1
    names = {"ko": k_o, "ki": k_i, "im": i_m, "jm": j_m}
    middle = [names[x] for x in order.apply(LOCAL_ORDERS[0])]
    sch.reorder(local, batch + [i_o, j_o] + middle + [i_r, j_r])
    sch.annotate(local, i_r, ann[0])
    sch.annotate(local, j_r, Annotation.VECTORIZE)
    sch.unroll_max_step(local, unroll)

    # the tile stage: [batch @ i_o @ j_o (parallel), i_m, j_m, i_r, j_r (vector)]
    ci_o, ci_m, ci_r = sch.split(out, n - 2, ti.factors)
    cj_o, cj_m, cj_r = sch.split(out, n - 1, tj.factors)
    sch.reorder(out, batch + [ci_o, cj_o, ci_m, cj_m, ci_r, cj_r])
    block = sch.parallel(out, batch + [ci_o, cj_o])
    sch.annotate(out, cj_r, Annotation.VECTORIZE)
    sch.compute_at(local, out, block if at == "block" else cj_m)
    if pack.val == "panel":
        _schedule_panels(sch, packed)
    return sch.state


def _schedule_panels(sch: Sched, k: int) -> None:
    """The packed copy [panels, ..., panel]: panels in parallel, each row a vector."""
    loops = sch.loops(k)
    sch.annotate(k, loops[0], Annotation.PARALLEL)
    if sch.extent(k, loops[-1]) <= 64:
        sch.annotate(k, loops[-1], Annotation.VECTORIZE)
