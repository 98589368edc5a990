"""Templates for convolutions with their fused element-wise epilogue: conv2d NCHW
(vectors along the output row), conv2d NCHWc (weights packed in blocks of output
channels, vectors along the block: the network compiler's layout) and depthwise
conv2d / 2-D pooling (the same window structure).

Each computes the conv's tile inside the tile loops of its epilogue (or write
cache), whose outer loops run fused in parallel; the "pad" knob inlines the
padding into the conv or keeps it as a parallel copy at root.
"""

from __future__ import annotations

from compiler.autotvm.space import Config
from compiler.autotvm.templates.helpers import (
    anchor_setup,
    at_most,
    define_pad_knob,
    matches_rank,
    schedule_pad_root,
    vector_width,
)
from compiler.autotvm.templates.registry import register_template
from compiler.ops.tags import (
    CONV2D_NCHW,
    CONV2D_NCHWC,
    DEPTHWISE_CONV2D_NCHW,
    POOL_AVG,
    POOL_MAX,
)
from compiler.schedule.conv_tiles import conv_tile_shape
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.schedule.tile_factors import row_factor, vector_factor
from compiler.te.dag import ComputeDAG

UNROLL_STEPS = [0, 16, 64]

CONV_ORDERS = (
    ("rco", "fm", "yr", "rci", "ry", "rx"),  # channel blocks outermost
    ("fm", "yr", "rco", "rci", "ry", "rx"),  # one tile at a time over all channels
    ("rco", "yr", "fm", "rci", "ry", "rx"),
    ("rco", "fm", "yr", "ry", "rx", "rci"),  # taps outside the channel loop
)


@register_template("conv2d_nchw", (CONV2D_NCHW,))
def conv2d_nchw_template(cfg: Config, dag: ComputeDAG) -> State:
    """Register tile f_r (unrolled, weights broadcast) x x_r (vector along the row)."""
    keep_pad = define_pad_knob(cfg, dag, (CONV2D_NCHW,))
    a = anchor_setup(dag, (CONV2D_NCHW,), keep_pad=keep_pad)
    sch, conv, out = a.sch, a.anchor, a.outer
    _, f, oh, ow = sch.state.stages[conv].op.shape
    channels = sch.state.stages[conv].op.reduce_axes[0].extent
    tf = cfg.define_split("tile_f", f, num_outputs=3, filter=at_most(16), fallback=[-1, 1, 4])
    ty = cfg.define_split("tile_y", oh, num_outputs=2, filter=at_most(8), fallback=[-1, 1])
    tx = cfg.define_split("tile_x", ow, num_outputs=2, filter=vector_width(ow), fallback=[-1, 64])
    tc = cfg.define_split("tile_rc", channels, num_outputs=2, fallback=[-1, channels])
    order = cfg.define_reorder(
        "local_order", CONV_ORDERS[0], "candidate", candidate=CONV_ORDERS, fallback=CONV_ORDERS[0]
    )
    at = cfg.define_knob("local_at", ["block", "tile"], fallback="block").val
    ann = cfg.define_annotate("ann_tile", ["f_r"], "try_unroll", fallback=["unroll"])
    unroll = cfg.define_knob("auto_unroll", UNROLL_STEPS, fallback=0).val

    # conv: [n, f, y, x, rc, ry, rx] -> [n, f_o, y_o, x_o, <order>, f_r, x_r]
    f_o, f_m, f_r = sch.split(conv, 1, tf.factors)
    y_o, y_r = sch.split(conv, 2, ty.factors)
    x_o, x_r = sch.split(conv, 3, tx.factors)
    rc_o, rc_i = sch.split(conv, 4, tc.factors)
    names = {"rco": rc_o, "rci": rc_i, "fm": f_m, "yr": y_r, "ry": 5, "rx": 6}
    middle = [names[x] for x in order.apply(CONV_ORDERS[0])]
    sch.reorder(conv, [0, f_o, y_o, x_o] + middle + [f_r, x_r])
    sch.annotate(conv, f_r, ann[0])
    sch.annotate(conv, x_r, Annotation.VECTORIZE)
    sch.unroll_max_step(conv, unroll)

    # tile stage: [n @ f_o @ y_o @ x_o (parallel), f_m, y_r, f_r, x_r (vector)]
    cf_o, cf_m, cf_r = sch.split(out, 1, tf.factors)
    cy_o, cy_r = sch.split(out, 2, ty.factors)
    cx_o, cx_r = sch.split(out, 3, tx.factors)
    sch.reorder(out, [0, cf_o, cy_o, cx_o, cf_m, cy_r, cf_r, cx_r])
    block = sch.parallel(out, [0, cf_o, cy_o, cx_o])
    sch.annotate(out, cx_r, Annotation.VECTORIZE)
    sch.compute_at(conv, out, block if at == "block" else cf_m)
    schedule_pad_root(sch, a.pad)
    return sch.state


NCHWC_ORDERS = (
    ("rco", "yr", "rci", "ry", "rx"),
    ("yr", "rco", "rci", "ry", "rx"),
    ("rco", "yr", "ry", "rx", "rci"),
)


@register_template("conv2d_nchwc", (CONV2D_NCHWC,))
def conv2d_nchwc_template(cfg: Config, dag: ComputeDAG) -> State:
    """Register tile fo_r blocks x x_r pixels, each a vector of the block's b channels:
    per tap, fo_r weight vectors and x_r broadcast input pixels."""
    keep_pad = define_pad_knob(cfg, dag, (CONV2D_NCHWC,))
    a = anchor_setup(dag, (CONV2D_NCHWC,), keep_pad=keep_pad)
    sch, conv, out = a.sch, a.anchor, a.outer
    _, blocks, oh, ow, block = sch.state.stages[conv].op.shape
    channels = sch.state.stages[conv].op.reduce_axes[0].extent
    width, mult = conv_tile_shape(ow, blocks)
    tfo = cfg.define_split("tile_fo", blocks, num_outputs=2, filter=at_most(4), fallback=[-1, mult])
    ty = cfg.define_split("tile_y", oh, num_outputs=2, filter=at_most(4), fallback=[-1, 1])
    tx = cfg.define_split("tile_x", ow, num_outputs=2, filter=at_most(32), fallback=[-1, width])
    tc = cfg.define_split("tile_rc", channels, num_outputs=2, fallback=[-1, channels])
    order = cfg.define_reorder("local_order", NCHWC_ORDERS[0], "candidate", candidate=NCHWC_ORDERS)
    tile_order = cfg.define_reorder("tile_order", ["fo_r", "x_r"], "all")
    ann = cfg.define_annotate("ann_tile", ["fo_r", "x_r"], "try_unroll", fallback=["unroll"] * 2)
    unroll = cfg.define_knob("auto_unroll", UNROLL_STEPS, fallback=0).val

    # conv: [n, fo, y, x, fi, rc, ry, rx] -> [n, fo_o, y_o, x_o, <order>, <tile_order>, fi]
    fo_o, fo_r = sch.split(conv, 1, tfo.factors)
    y_o, y_r = sch.split(conv, 2, ty.factors)
    x_o, x_r = sch.split(conv, 3, tx.factors)
    rc_o, rc_i = sch.split(conv, 5, tc.factors)
    names = {"rco": rc_o, "rci": rc_i, "yr": y_r, "ry": 6, "rx": 7, "fo_r": fo_r, "x_r": x_r}
    middle = [names[x] for x in order.apply(NCHWC_ORDERS[0])]
    tile = [names[x] for x in tile_order.apply(["fo_r", "x_r"])]
    sch.reorder(conv, [0, fo_o, y_o, x_o] + middle + tile + [4])
    sch.annotate(conv, fo_r, ann[0])
    sch.annotate(conv, x_r, ann[1])
    sch.annotate(conv, 4, Annotation.VECTORIZE)
    sch.unroll_max_step(conv, unroll)

    # tile stage (NCHW): [n @ f_o @ y_o @ x_o (parallel), y_r, x_r, f_i]
    cf_o, cf_i = sch.split(out, 1, [tfo.size[1] * block])
    cy_o, cy_r = sch.split(out, 2, ty.factors)
    cx_o, cx_r = sch.split(out, 3, tx.factors)
    sch.reorder(out, [0, cf_o, cy_o, cx_o, cy_r, cx_r, cf_i])
    tile_loop = sch.parallel(out, [0, cf_o, cy_o, cx_o])
    sch.compute_at(conv, out, tile_loop)
    schedule_pad_root(sch, a.pad)
    return sch.state


WINDOW_ORDERS = (
    ("xm", "ry", "rx", "cr", "yr"),  # taps outside the register tile
    ("cr", "yr", "xm", "ry", "rx"),
    ("xm", "cr", "yr", "ry", "rx"),
)
WINDOW_TAGS = (DEPTHWISE_CONV2D_NCHW, POOL_MAX, POOL_AVG)


def window_template(cfg: Config, dag: ComputeDAG, tags: tuple[str, ...]) -> State:
    """One output value per window (depthwise conv, pooling): tile c_r x y_r x x_r,
    vectors along the row (x_r), the taps around or inside the tile."""
    keep_pad = define_pad_knob(cfg, dag, tags, fallback="inline")
    a = anchor_setup(dag, tags, keep_pad=keep_pad)
    sch, win, out = a.sch, a.anchor, a.outer
    _, c, oh, ow = sch.state.stages[win].op.shape
    vec = vector_factor(ow)  # the fallback: like the default schedule, whole rows
    rows = row_factor(oh, 1 if ow >= 56 else 2)
    tc = cfg.define_split("tile_c", c, num_outputs=2, filter=at_most(8), fallback=[-1, 1])
    ty = cfg.define_split("tile_y", oh, num_outputs=2, filter=at_most(8), fallback=[-1, rows])
    tx = cfg.define_split(
        "tile_x", ow, num_outputs=3, filter=vector_width(ow), fallback=[-1, ow // vec, vec]
    )
    order = cfg.define_reorder(
        "local_order", WINDOW_ORDERS[0], "candidate", candidate=WINDOW_ORDERS
    )
    at = cfg.define_knob("local_at", ["block", "tile"], fallback="block").val
    ann = cfg.define_annotate("ann_tile", ["c_r", "y_r"], "try_unroll", fallback=["none", "unroll"])

    # window stage: [n, c, y, x, ry, rx] -> [n, c_o, y_o, x_o, <order>, x_r]
    c_o, c_r = sch.split(win, 1, tc.factors)
    y_o, y_r = sch.split(win, 2, ty.factors)
    x_o, x_m, x_r = sch.split(win, 3, tx.factors)
    names = {"xm": x_m, "ry": 4, "rx": 5, "cr": c_r, "yr": y_r}
    middle = [names[x] for x in order.apply(WINDOW_ORDERS[0])]
    sch.reorder(win, [0, c_o, y_o, x_o] + middle + [x_r])
    sch.annotate(win, c_r, ann[0])
    sch.annotate(win, y_r, ann[1])
    sch.annotate(win, x_r, Annotation.VECTORIZE)

    # tile stage: [n @ c_o @ y_o @ x_o (parallel), x_m, c_r, y_r, x_r (vector)]
    cc_o, cc_r = sch.split(out, 1, tc.factors)
    cy_o, cy_r = sch.split(out, 2, ty.factors)
    cx_o, cx_m, cx_r = sch.split(out, 3, tx.factors)
    sch.reorder(out, [0, cc_o, cy_o, cx_o, cx_m, cc_r, cy_r, cx_r])
    block = sch.parallel(out, [0, cc_o, cy_o, cx_o])
    sch.annotate(out, cx_r, Annotation.VECTORIZE)
    sch.compute_at(win, out, block if at == "block" else cx_m)
    schedule_pad_root(sch, a.pad)
    return sch.state


@register_template("depthwise_conv2d", (DEPTHWISE_CONV2D_NCHW,))
def depthwise_template(cfg: Config, dag: ComputeDAG) -> State:
    return window_template(cfg, dag, (DEPTHWISE_CONV2D_NCHW,))


def _nchw_pool(dag: ComputeDAG) -> bool:
    """A pool of NCHW data (a blocked one is the blocked template's)."""
    return matches_rank(dag, (POOL_MAX, POOL_AVG), 4)


@register_template("pool2d", _nchw_pool)
def pool_template(cfg: Config, dag: ComputeDAG) -> State:
    return window_template(cfg, dag, (POOL_MAX, POOL_AVG))
