"""Template for ops writing blocked data [N, C/b, H, W, b] (models/blocked_layout.py):
conv2d_blocked, depthwise_conv2d_blocked and the pools on blocked data, with their fused
element-wise epilogue. The register tile is fo_r blocks x y_r rows x x_r pixels, each a
vector of the block's b channels; the reductions run around it (per tap, fo_r weight
vectors and one broadcast or vector input per pixel)."""

from __future__ import annotations

from compiler.autotvm.space import Config
from compiler.autotvm.templates.helpers import (
    anchor_setup,
    at_most,
    define_pad_knob,
    matches_rank,
    schedule_pad_root,
)
from compiler.autotvm.templates.registry import register_template
from compiler.ops.tags import (
    CONV2D_BLOCKED,
    DEPTHWISE_CONV2D_BLOCKED,
    GLOBAL_POOL_AVG,
    POOL_AVG,
    POOL_MAX,
)
from compiler.schedule.conv_tiles import conv_register_budget, conv_tile_plan
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.schedule.tile_factors import row_factor
from compiler.te.dag import ComputeDAG

BLOCKED_TAGS = (CONV2D_BLOCKED, DEPTHWISE_CONV2D_BLOCKED, POOL_MAX, POOL_AVG, GLOBAL_POOL_AVG)
UNROLL_STEPS = [0, 16, 64]


def writes_blocked(dag: ComputeDAG) -> bool:
    return matches_rank(dag, BLOCKED_TAGS, 5)


@register_template("blocked", writes_blocked)
def blocked_template(cfg: Config, dag: ComputeDAG) -> State:
    keep_pad = define_pad_knob(cfg, dag, BLOCKED_TAGS, fallback="inline")
    a = anchor_setup(dag, BLOCKED_TAGS, keep_pad=keep_pad)
    sch, op, out = a.sch, a.anchor, a.outer
    stage = sch.state.stages[op]
    _, blocks, oh, ow, _ = stage.op.shape
    if stage.op.tag == CONV2D_BLOCKED:  # the default schedule's tile, whole blocks
        width, mult, _ = conv_tile_plan(ow, blocks)
    else:
        width, mult = row_factor(ow, conv_register_budget()[0]), 1
    tfo = cfg.define_split("tile_fo", blocks, num_outputs=2, filter=at_most(4), fallback=[-1, mult])
    ty = cfg.define_split("tile_y", oh, num_outputs=2, filter=at_most(4), fallback=[-1, 1])
    tx = cfg.define_split("tile_x", ow, num_outputs=2, filter=at_most(16), fallback=[-1, width])
    tile_order = cfg.define_reorder("tile_order", ["fo_r", "y_r", "x_r"], "all")
    ann = cfg.define_annotate(
        "ann_tile", ["fo_r", "y_r", "x_r"], "try_unroll", fallback=["unroll"] * 3
    )
    unroll = cfg.define_knob("auto_unroll", UNROLL_STEPS, fallback=0).val

    # op: [n, fo, y, x, fi, red...] -> [n, fo_o, y_o, x_o, red..., <tile_order>, fi]
    loops = sch.loops(op)
    n, fo, y, x, fi, reduce = loops[0], loops[1], loops[2], loops[3], loops[4], loops[5:]
    fo_o, fo_r = sch.split(op, fo, tfo.factors)
    y_o, y_r = sch.split(op, y, ty.factors)
    x_o, x_r = sch.split(op, x, tx.factors)
    names = {"fo_r": fo_r, "y_r": y_r, "x_r": x_r}
    tile = [names[t] for t in tile_order.apply(["fo_r", "y_r", "x_r"])]
    sch.reorder(op, [n, fo_o, y_o, x_o, *reduce, *tile, fi])
    for name, how in zip(("fo_r", "y_r", "x_r"), ann):
        sch.annotate(op, names[name], how)
    sch.annotate(op, fi, Annotation.VECTORIZE)
    sch.unroll_max_step(op, unroll)

    # tile stage: [n @ fo_o @ y_o @ x_o (parallel), fo_r, y_r, x_r, fi (vector)]
    cn, cf, cy, cx, ci = sch.loops(out)
    cf_o, cf_r = sch.split(out, cf, tfo.factors)
    cy_o, cy_r = sch.split(out, cy, ty.factors)
    cx_o, cx_r = sch.split(out, cx, tx.factors)
    sch.reorder(out, [cn, cf_o, cy_o, cx_o, cf_r, cy_r, cx_r, ci])
    tile_loop = sch.parallel(out, [cn, cf_o, cy_o, cx_o])
    sch.annotate(out, ci, Annotation.VECTORIZE)
    sch.compute_at(op, out, tile_loop)
    schedule_pad_root(sch, a.pad)
    return sch.state
