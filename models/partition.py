"""Cut a Graph into subgraphs and deduplicate them into tuning tasks.

The rule is TVM's FuseOps (and Ansor's task extraction) in small:
- an anchor op (conv, matmul, pooling, reduction, softmax, layer norm) starts
  a subgraph;
- element-wise and broadcast consumers join the subgraph of their input when
  that input has no other consumer (bias, BN leftovers, relu/clip, residual
  add: the epilogue), without changing an anchor's output shape; a small remap
  read only by such a consumer (a gate's columns) is inlined with it, and so are the
  anchorless groups of its shape it alone reads when it joins an anchorless group;
- pure index remaps (reshape, transpose, slice, ...) feeding an anchor as its
  only consumer are inlined into it (the prologue); a layer norm, a softmax or a
  reduction inlines any injective group feeding it alone (an embedding lookup and its
  position adds: read three times by a layer norm, by the mean, the variance and the
  output, which costs less than a round trip through memory);
- everything else (concat, pad, a gather, a lone element-wise chain) is its own
  subgraph, which element-wise consumers join in the same way; an element-wise
  subgraph (element-wise ops and remaps) absorbs the element-wise subgraphs it
  reads when it holds every reader of them (the diamonds of Mish, of an attention
  mask's select, a recurrent cell's gates), then joins the anchor whose output it
  reads as its epilogue when it holds every reader of that (GPT-2's tanh GELU).
Each subgraph is one ComputeDAG; subgraphs with equal workload keys are one
TuningTask whose weight is how often it occurs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from compiler import te
from compiler.te.dag import ComputeDAG
from models.blocked_layout import propagate_blocked_layout
from models.graph import Graph, Node
from models.layout import BLOCK, pack_conv_weights, pack_matmul_weights
from models.pointwise import flat_plane_shapes, pointwise_as_matmul

ANCHOR_OPS = {
    "conv2d_nchw", "conv2d_nchwc", "conv2d_blocked", "conv2d_winograd", "depthwise_conv2d_nchw",
    "depthwise_conv2d_blocked", "matmul", "matmul_packed", "matmul_panels", "batch_matmul",
    "dense", "max_pool2d", "avg_pool2d", "global_avg_pool2d", "reduce_sum", "reduce_mean",
    "reduce_max", "reduce_min", "softmax", "layer_norm", "argmax", "argmin", "cumsum", "einsum",
    "resize",
}  # fmt: skip
REMAP_OPS = {
    "transpose", "reshape", "flatten", "squeeze", "expand_dims", "slice", "strided_slice", "take",
    "broadcast_to", "tile", "unblock_channels",
}  # fmt: skip
# anchors that inline an injective prologue too: they read each input element once (a
# reduction: T5's RMS norm squares) or a few times (normalizations: BERT's embeddings)
INJECTIVE_PROLOGUE_ANCHORS = {
    "layer_norm", "softmax", "reduce_sum", "reduce_mean", "reduce_max", "reduce_min",
}  # fmt: skip
# injective ops that start a subgraph of their own (gathers: reading data at loaded indices
# is no pure remap an anchor could inline into its inner loop)
OTHER_INJECTIVE_OPS = {
    "concat", "pad", "edge_pad", "dilate_pad", "gather", "gather_elements", "gather_nd",
}  # fmt: skip


def node_kind(node: Node) -> str:
    """anchor | remap | injective | elemwise."""
    if node.op in ANCHOR_OPS:
        return "anchor"
    if node.op in REMAP_OPS:
        return "remap"
    return "injective" if node.op in OTHER_INJECTIVE_OPS else "elemwise"


@dataclass
class Group:
    """Nodes being fused: kind is anchor (has one), remap (only remaps) or injective."""

    nodes: list[Node]
    kind: str

    @property
    def tail(self) -> str:
        return self.nodes[-1].output


@dataclass(frozen=True, eq=False)
class Subgraph:
    """One fused group: `output = dag(*params)`, params are value names in DAG order."""

    id: int
    nodes: tuple[Node, ...]
    params: tuple[str, ...]
    output: str
    dag: ComputeDAG

    @property
    def workload_key(self) -> str:
        return self.dag.workload_key

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(n.op for n in self.nodes)

    def arrays(self, buffers: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The arrays of a call of the kernel, `params` then `output`, each viewed in the
        shape the DAG reads it in (the same memory: models/pointwise.py's flat planes)."""
        shapes = [t.shape for t in self.dag.placeholders] + [self.dag.outputs[0].shape]
        names = (*self.params, self.output)
        return [buffers[n].reshape(s) for n, s in zip(names, shapes, strict=True)]


@dataclass(frozen=True, eq=False)
class TuningTask:
    """A distinct workload: its DAG, how often the network runs it, its FLOPs per run."""

    id: int
    dag: ComputeDAG
    ops: tuple[str, ...]
    weight: int
    subgraphs: tuple[int, ...] = field(default=())

    @property
    def workload_key(self) -> str:
        return self.dag.workload_key

    @cached_property
    def flops(self) -> int:
        return self.dag.flop_count

    @property
    def shapes(self) -> list[list[int]]:
        """Shapes of the inputs, then of the output."""
        return [list(t.shape) for t in self.dag.placeholders] + [list(self.dag.outputs[0].shape)]


@dataclass(frozen=True)
class Partition:
    graph: Graph  # the graph partitioned (after the layout rewrite)
    subgraphs: list[Subgraph]
    tasks: list[TuningTask]

    def task_of(self, sub: Subgraph) -> TuningTask:
        return next(t for t in self.tasks if sub.id in t.subgraphs)


def partition(
    graph: Graph, *, pack_weights: bool = True, winograd: bool = True, blocked: bool = True
) -> Partition:
    """Fused subgraphs in execution order, and the deduplicated tuning tasks.

    With `pack_weights`, constant conv weights are first rewritten into the
    layout the schedules read (models/layout.py): blocked, or Winograd-transformed
    for the 3x3 stride-1 convs where that pays (unless `winograd` is False); constant
    right operands of matrix products into column panels; then,
    with `blocked`, the activations between direct convs are kept in channel blocks
    (models/blocked_layout.py); the 1x1 convs left on NCHW data become matrix products
    on flat planes (models/pointwise.py).
    """
    if pack_weights:
        graph = pack_matmul_weights(pack_conv_weights(graph, winograd=winograd))
        if blocked:
            graph = propagate_blocked_layout(graph, BLOCK)
        graph = pointwise_as_matmul(graph, frozenset(REMAP_OPS))
    groups = fuse_groups(graph)
    subgraphs = [build_subgraph(k, g, graph) for k, g in enumerate(groups)]
    by_key: dict[str, list[Subgraph]] = {}
    for sub in subgraphs:
        by_key.setdefault(sub.workload_key, []).append(sub)
    tasks = [
        TuningTask(k, subs[0].dag, subs[0].ops, len(subs), tuple(s.id for s in subs))
        for k, subs in enumerate(by_key.values())
    ]
    return Partition(graph, subgraphs, tasks)


def fuse_groups(graph: Graph) -> list[Group]:
    """The fusion groups, ordered so every group runs after those it reads."""
    uses = Counter(i for n in graph.nodes for i in n.inputs)
    uses.update(v.name for v in graph.outputs)
    group_of: dict[str, Group] = {}  # tail value -> its group
    order = {id(n): k for k, n in enumerate(graph.nodes)}  # id(node) -> position
    for node in graph.nodes:
        kind = node_kind(node)
        group = _join(graph, node, kind, group_of, uses)
        if group is None:
            group = Group([node], "remap" if kind == "remap" else kind)
            if kind == "elemwise":
                group.kind = "injective"
        group_of[node.output] = group
    unique = list({id(g): g for g in group_of.values()}.values())
    unique = _merge_diamonds(graph, unique, uses)
    unique = _merge_fan_ins(graph, unique, uses, order)
    unique = _merge_diamonds(graph, unique, uses)  # a diamond whose branches were groups
    return sorted(unique, key=lambda g: order[id(g.nodes[-1])])


def _merge_fan_ins(
    graph: Graph, groups: list[Group], uses: Counter, order: dict[int, int]
) -> list[Group]:
    """An element-wise group whose inputs come from element-wise groups it holds every
    reader of joins them (x * tanh(softplus(x)), a select between two branches of x):
    one task computes the whole diamond, as one chain would."""
    while True:
        by_tail = {g.tail: g for g in groups}
        for g in groups:
            producers = _fan_in(graph, g, by_tail, uses)
            if producers:
                nodes = [n for p in [*producers, g] for n in p.nodes]
                merged = Group(sorted(nodes, key=lambda n: order[id(n)]), "injective")
                gone = {id(p) for p in [*producers, g]}
                groups = [merged] + [h for h in groups if id(h) not in gone]
                break
        else:
            return groups


def _fan_in(graph: Graph, g: Group, by_tail: dict[str, Group], uses: Counter) -> list[Group]:
    """The element-wise groups among the producers of `g` that it can absorb (each read
    only inside the merged group), or []; other inputs (an anchor's output) stay inputs."""
    if not _elementwise(g):
        return []
    inside = {n.output for n in g.nodes}
    sources = {i for n in g.nodes for i in n.inputs} - inside
    producers = [by_tail[v] for v in sorted(sources) if v in by_tail]
    producers = [p for p in producers if p is not g and _elementwise(p)]
    if not producers:
        return []
    merged = inside | {n.output for p in producers for n in p.nodes}
    readers = Counter(i for n in graph.nodes if n.output in merged for i in n.inputs)
    if any(readers[p.tail] != uses[p.tail] for p in producers):
        return []
    return producers


def _elementwise(g: Group) -> bool:
    """Element-wise ops and pure remaps only (a recurrent cell's gates: slices of one matmul)."""
    kinds = {node_kind(n) for n in g.nodes}
    return g.kind in ("injective", "remap") and "elemwise" in kinds and kinds <= ELEMWISE_OR_REMAP


ELEMWISE_OR_REMAP = {"elemwise", "remap"}


def _merge_diamonds(graph: Graph, groups: list[Group], uses: Counter) -> list[Group]:
    """An element-wise group that reads only an anchor group's output, and holds every
    reader of it (x * erf(x / c): GELU), joins that anchor group as its epilogue."""
    by_tail = {g.tail: g for g in groups}
    merged: list[Group] = []
    for g in groups:
        anchor = _diamond_anchor(graph, g, by_tail, uses)
        if anchor is not None:
            anchor.nodes.extend(g.nodes)
        else:
            merged.append(g)
    return merged


def _diamond_anchor(
    graph: Graph, g: Group, by_tail: dict[str, Group], uses: Counter
) -> Group | None:
    """The anchor group whose output `g` reads, holding every reader of it; `g` may read
    other values too (a recurrent cell's previous state) but no other anchor's output."""
    if g.kind != "injective" or any(node_kind(n) not in ELEMWISE_OR_REMAP for n in g.nodes):
        return None
    inside = {n.output for n in g.nodes}
    outside = {i for n in g.nodes for i in n.inputs} - inside - set(graph.constants)
    anchors = [by_tail[v] for v in outside if v in by_tail and by_tail[v].kind == "anchor"]
    if len(anchors) != 1:
        return None
    anchor = anchors[0]
    readers = sum(i == anchor.tail for n in g.nodes for i in n.inputs)
    same_shape = graph.values[anchor.tail].shape == graph.values[g.tail].shape
    return anchor if same_shape and readers == uses[anchor.tail] else None


def _join(
    graph: Graph, node: Node, kind: str, group_of: dict[str, Group], uses: Counter
) -> Group | None:
    """The group `node` joins (after appending it), or None for a new group."""
    sole = [i for i in node.inputs if i in group_of and uses[i] == 1 and group_of[i].tail == i]
    if kind == "anchor":
        injective = node.op in INJECTIVE_PROLOGUE_ANCHORS
        return _with_prologue(node, [group_of[i] for i in sole], group_of, injective)
    if kind == "elemwise":
        return _as_epilogue(graph, node, sole, group_of)
    for i in sole:  # an index remap, concat or pad follows a group without an anchor
        g = group_of[i]
        if g.kind != "anchor":
            if node.op == "concat":  # and takes in its other remapped inputs (a stack)
                others = [v for v in sole if group_of[v].kind == "remap" and group_of[v] is not g]
                _absorb_remaps(g, others, group_of)
            g.nodes.append(node)
            g.kind = g.kind if kind == "remap" else "injective"
            return g
    return None


def _with_prologue(
    node: Node, producers: list[Group], group_of: dict[str, Group], injective: bool = False
) -> Group | None:
    """A new anchor group holding the pure-remap groups (with `injective`, the injective
    groups too) that feed only this anchor."""
    kinds = ("remap", "injective") if injective else ("remap",)
    prologue = [g for g in producers if g.kind in kinds]
    if not prologue:
        return None
    group = Group([n for g in prologue for n in g.nodes] + [node], "anchor")
    for value, g in list(group_of.items()):
        if any(g is p for p in prologue):
            group_of[value] = group
    return group


def _as_epilogue(
    graph: Graph, node: Node, sole: list[str], group_of: dict[str, Group]
) -> Group | None:
    """The group an element-wise node extends: an anchor's first (same output shape)."""
    shape = graph.values[node.output].shape
    for prefer_anchor in (True, False):
        for i in sole:
            g = group_of[i]
            is_anchor = g.kind == "anchor"
            if is_anchor != prefer_anchor or (is_anchor and graph.values[i].shape != shape):
                continue
            if is_anchor:  # remaps read only here are inlined: a recurrent step's input
                _absorb_remaps(g, [v for v in sole if _small_remap(graph, group_of[v])], group_of)
            else:  # as are other anchorless groups of its shape (BERT's token type lookup)
                same = [v for v in sole if graph.values[v].shape == shape]
                _absorb_remaps(g, [v for v in same if group_of[v].kind != "anchor"], group_of)
            g.nodes.append(node)
            g.kind = "injective" if g.kind == "remap" else g.kind
            return g
    return None


def _small_remap(graph: Graph, g: Group) -> bool:
    """A remap group reading at most twice what it writes: a gate's columns of one step's
    input, not one step out of the whole sequence (whose offset would make every step a
    workload of its own)."""
    if g.kind != "remap":
        return False
    inside = {n.output for n in g.nodes}
    sources = {i for n in g.nodes for i in n.inputs} - inside
    read = sum(math.prod(graph.values[v].shape) for v in sources)
    return read <= 2 * math.prod(graph.values[g.tail].shape)


def _absorb_remaps(g: Group, values: list[str], group_of: dict[str, Group]) -> None:
    """Group `g` takes in the groups whose outputs are `values` (read only by g's next node)."""
    for value in values:
        remap = group_of[value]
        if remap is g:
            continue
        g.nodes.extend(remap.nodes)
        for name, owner in list(group_of.items()):
            if owner is remap:
                group_of[name] = g


def build_subgraph(index: int, group: Group, graph: Graph) -> Subgraph:
    """The group's ComputeDAG; its inputs are the values produced outside it."""
    tensors: dict[str, te.Tensor] = {}
    names: dict[int, str] = {}
    flat = flat_plane_shapes(group.nodes, graph)
    for node in group.nodes:
        args = []
        for name in node.inputs:
            if name not in tensors:
                value = graph.values[name]
                t = te.placeholder(flat.get(name, value.shape), value.dtype, name="in")
                tensors[name], names[id(t)] = t, name
            args.append(tensors[name])
        tensors[node.output] = node.call(args)
    dag = ComputeDAG([tensors[group.tail]])
    params = tuple(names[id(t)] for t in dag.placeholders)
    return Subgraph(index, tuple(group.nodes), params, group.tail, dag)
