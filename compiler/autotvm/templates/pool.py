"""Template for global pooling ([N, C, H, W] -> [N, C, 1, 1]): channel tiles in
parallel, the taps around or inside the channel tile."""

from __future__ import annotations

from compiler.autotvm.space import Config
from compiler.autotvm.templates.helpers import anchor_setup, at_most, matches_rank
from compiler.autotvm.templates.registry import register_template
from compiler.ops.tags import GLOBAL_POOL_AVG
from compiler.schedule.state import State
from compiler.schedule.steps import Annotation
from compiler.te.dag import ComputeDAG

ORDERS = (("c_r", "ry", "rx"), ("ry", "rx", "c_r"))


def _nchw_global_pool(dag: ComputeDAG) -> bool:
    """A global pool of NCHW data (a blocked one is the blocked template's)."""
    return matches_rank(dag, (GLOBAL_POOL_AVG,), 4)


@register_template("global_pool2d", _nchw_global_pool)
def global_pool_template(cfg: Config, dag: ComputeDAG) -> State:
    a = anchor_setup(dag, (GLOBAL_POOL_AVG,))
    sch, pool, out = a.sch, a.anchor, a.outer
    channels = sch.state.stages[pool].op.shape[1]
    tc = cfg.define_split("tile_c", channels, num_outputs=2, filter=at_most(64), fallback=[-1, 16])
    order = cfg.define_reorder("local_order", ORDERS[0], "candidate", candidate=ORDERS)
    ann = cfg.define_annotate("ann_c", ["c_r"], "try_unroll_vec")

    # pool: [n, c, y, x, ry, rx] -> [n, c_o, y, x, <order>]
    c_o, c_r = sch.split(pool, 1, tc.factors)
    names = {"c_r": c_r, "ry": 4, "rx": 5}
    sch.reorder(pool, [0, c_o, 2, 3] + [names[x] for x in order.apply(ORDERS[0])])
    sch.annotate(pool, c_r, ann[0])

    # tile stage: [n @ c_o (parallel), y, x, c_r (vector)]
    cc_o, cc_r = sch.split(out, 1, tc.factors)
    sch.reorder(out, [0, cc_o, 2, 3, cc_r])
    tile = sch.parallel(out, [0, cc_o])
    sch.annotate(out, cc_r, Annotation.VECTORIZE)
    sch.compute_at(pool, out, tile)
    return sch.state
