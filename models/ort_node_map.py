"""onnxruntime's nodes placed on our subgraphs, for the per-task onnxruntime times of
models.ort_profile: each node of onnxruntime's optimized graph (saved by the profiled
session) goes to the one subgraph that computes what it computes, or is left unplaced
with the reason and the subgraphs whose time it makes unknown. A wrong placement would
put a figure in the wrong row of the report; an unplaced node empties rows instead.

onnxruntime rewrites the graph: NCHWc convs with fused activations and residual adds
whose outputs are new values ("reorder_token_7"), inserted ReorderInput/ReorderOutput
and Gemm reshapes, fused nodes (FusedConv, QuickGelu, FusedMatMul, SkipLayerNormalization).
Placing a node takes three steps:

1. Trace values. A value that exists in the original model is itself. A value
   onnxruntime made is traced through layout nodes (reorders, reshapes, squeezes,
   transposes: forward from their input or back from their output), else from the name
   of the node making it: decorations stripped ("fused ", "_nchwc", "/MatMulAddFusion",
   "_token_N", "_new_reshape") it names an original node or value, the anchor; the
   value is the anchor's output carried forward through the original nodes that no
   other onnxruntime node computes and that read nothing the node does not (the fused
   activation, the residual Add of an NCHWc Conv+Add+Relu).
2. Cover. A node computes the original nodes between its traced inputs and its traced
   outputs (walked back from the outputs, stopping at its inputs and at constants).
3. Place, by the subgraphs holding those nodes (our `Node.source` names the original
   node's index):
   - one subgraph: placed there;
   - none (a reorder, an inserted reshape: layout only): placed with the node on its
     made-up side (a ReorderInput with the node reading its output, a ReorderOutput with
     the node writing its input) when those agree;
   - several: it computes parts of several subgraphs (a SkipLayerNormalization holds our
     residual add and our layer norm). Reshapes and transposes it folds away cost
     onnxruntime nothing and do not count; otherwise it is not placed and blocks them;
   - its outputs are constants to our importer: it is work we do at import (no task).

A node that does not trace consistently (an output traced nowhere, a walk that reaches
an input the node does not read, an original node claimed by two nodes) is not placed.
With the unplaced nodes it passes values to, it blocks every subgraph its time may
belong to: those holding the original nodes between the values the group reads and the
values it hands on, and those of the placed nodes around it (all of them when that
region does not trace either).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import onnx

from models.partition import Partition

_SOURCE_INDEX = re.compile(r"#(\d+)\)$")
_FUSION_TAG = re.compile(r"/\w*Fusion\b.*$")  # MatMul_1/MatMulScaleFusion//MatmulTransposeFusion/
_SUFFIX = re.compile(r"(_token_\d+|_nchwc|_new_reshape)$")  # relu_8_nchwc, Gelu_token_42
# one data input, one output, the same values in another layout or shape
LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
              "Identity", "Transpose", "Dropout"}  # fmt: skip
# original ops a fused onnxruntime node does without work of its own (index remaps)
VIEW_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "Transpose"}
SHAPE_OPS = {"Shape", "Size"}  # their outputs are constants to our importer
# what onnxruntime fuses into the node before it (activations, residual adds, scales)
ELEMENTWISE_OPS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
                   "Elu", "Selu", "Softplus", "PRelu", "Gelu", "Erf", "Exp", "Sqrt", "Pow",
                   "Neg", "Abs", "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min",
                   "BatchNormalization", "Identity", "Dropout", "Cast"}  # fmt: skip


@dataclass(frozen=True)
class Placement:
    """Where one onnxruntime node's time goes: `subgraph`, or nowhere with a `reason`;
    `blocks` are the subgraphs whose onnxruntime time it leaves unknown."""

    subgraph: int | None
    blocks: tuple[int, ...] = ()
    reason: str = ""
    op: str = ""
    kind: str = "node"  # node | layout (placed) | spans | folded | unplaced


@dataclass
class NodeMap:
    """Every node of onnxruntime's optimized graph by name -> its Placement."""

    placements: dict[str, Placement]
    subgraphs: tuple[int, ...] = ()  # all of ours, blocked by a node the graph lacks
    missing: str = "is not in onnxruntime's saved optimized graph"

    def placement(self, name: str) -> Placement:
        found = self.placements.get(name)
        if found is None:
            return Placement(None, self.subgraphs, self.missing, kind="unplaced")
        return found

    def subgraph(self, name: str) -> int | None:
        return self.placement(name).subgraph


def map_nodes(
    original: onnx.ModelProto, optimized: onnx.ModelProto | None, part: Partition
) -> NodeMap:
    """Place every node of onnxruntime's optimized graph (module doc)."""
    every = tuple(s.id for s in part.subgraphs)
    if optimized is None:
        return NodeMap({}, every, "is unknown: onnxruntime did not save its optimized graph")
    orig = _Original(original, part)
    opt = _Optimized(optimized, set(orig.runtime))
    corr = _trace(orig, opt)
    covers = _covers(orig, opt, corr)
    placements: dict[str, Placement] = {}
    layout: list[onnx.NodeProto] = []
    for node in opt.nodes:
        cover = covers[node.name]
        if isinstance(cover, str):
            continue  # placed below, once the neighbours are known
        outs = [corr[o] for o in opt.outputs(node)]
        if not any(orig.runtime.get(v, False) for v in outs):
            reason = "computes constants, which our importer folds (no task)"
            placements[node.name] = Placement(None, (), reason, node.op_type, "folded")
            continue
        work = {k for k in cover if orig.nodes[k].op_type not in VIEW_OPS} or cover
        subs = sorted({s for k in work for s in orig.subs.get(k, ())})
        if len(subs) == 1:
            placements[node.name] = Placement(subs[0], op=node.op_type)
        elif subs:
            reason = f"computes {_ops(orig, work)}, parts of several of our subgraphs"
            placements[node.name] = Placement(None, tuple(subs), reason, node.op_type, "spans")
        else:
            layout.append(node)
    _place_layout(layout, opt, placements)
    unplaced = [n for n in opt.nodes if n.name not in placements]
    for cluster in _clusters(unplaced, opt):
        blocks = _suspects(cluster, orig, opt, corr, placements) or every
        for node in cluster:
            cover = covers[node.name]
            reason = cover if isinstance(cover, str) else "is a layout node next to no placed node"
            placements[node.name] = Placement(None, blocks, reason, node.op_type, "unplaced")
    return NodeMap(placements, every)


class _Original:
    """The original model: producers, consumers, which values are runtime tensors to our
    importer (not folded into constants), and our subgraphs per original node index."""

    def __init__(self, proto: onnx.ModelProto, part: Partition) -> None:
        graph = proto.graph
        self.nodes = list(graph.node)
        self.producer = {o: k for k, n in enumerate(self.nodes) for o in n.output if o}
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for k, n in enumerate(self.nodes):
            for i in dict.fromkeys(i for i in n.input if i):
                self.consumers[i].append(k)
        inits = {t.name for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}
        self.runtime = {i.name: True for i in graph.input if i.name not in inits}
        self.runtime.update({name: False for name in inits})
        for n in self.nodes:  # topological order
            live = n.op_type not in SHAPE_OPS and any(self.runtime.get(i, False) for i in n.input)
            self.runtime.update({o: live for o in n.output if o})
        self.subs: dict[int, set[int]] = defaultdict(set)
        for sub in part.subgraphs:
            for node in sub.nodes:
                match = _SOURCE_INDEX.search(node.source)
                if match:
                    self.subs[int(match.group(1))].add(sub.id)
        self.by_name: dict[str, int] = {}
        for k, n in enumerate(self.nodes):
            if n.name:
                self.by_name.setdefault(n.name, k)

    def anchor(self, name: str) -> int | None:
        """The original node an onnxruntime node name was made from, if it names one."""
        for candidate in _candidates(name):
            k = self.by_name.get(candidate, self.producer.get(candidate))
            if k is not None:
                return k
        return None


def _candidates(name: str) -> list[str]:
    """`name`, then with onnxruntime's decorations stripped, step by step."""
    out = [name]
    current = _FUSION_TAG.sub("", name.removeprefix("fused "))
    out.append(current)
    while (shorter := _SUFFIX.sub("", current)) != current:
        out.append(current := shorter)
    return list(dict.fromkeys(c for c in out if c))


class _Optimized:
    """onnxruntime's optimized graph: nodes, producers and consumers of data values."""

    def __init__(self, proto: onnx.ModelProto, original_values: set[str]) -> None:
        graph = proto.graph
        self.nodes = list(graph.node)
        self.constants = {t.name for t in graph.initializer}
        self.constants.update(o for n in self.nodes if n.op_type == "Constant" for o in n.output)
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.nodes:
            for i in dict.fromkeys(self.inputs(n)):
                self.consumers[i].append(n)
        self.graph_outputs = {o.name for o in graph.output}
        self.values = set(self.producer) | {i for n in self.nodes for i in n.input if i}
        self.original = self.values & original_values  # the rest onnxruntime made up

    def inputs(self, node: onnx.NodeProto) -> list[str]:
        """The node's data inputs (not constants)."""
        return [i for i in node.input if i and i not in self.constants]

    def outputs(self, node: onnx.NodeProto) -> list[str]:
        """The node's outputs that something reads (optional outputs left unused are not;
        all of them when nothing reads any)."""
        used = [o for o in node.output if o and (o in self.consumers or o in self.graph_outputs)]
        return used or [o for o in node.output if o]


def _trace(orig: _Original, opt: _Optimized) -> dict[str, str]:
    """Optimized value -> the original value it holds (in some layout), where known."""
    corr = {v: v for v in opt.values if v in orig.runtime}
    anchors = {n.name: orig.anchor(n.name) for n in opt.nodes}
    claimed: dict[int, list[str]] = defaultdict(list)
    for name, k in anchors.items():
        if k is not None:
            claimed[k].append(name)
    while True:
        while _trace_layout(opt, corr):
            pass
        progressed = False
        for node in opt.nodes:
            outs = [o for o in node.output if o]
            k = anchors[node.name]
            if len(outs) != 1 or outs[0] in corr or k is None:
                continue
            if any(i not in corr for i in opt.inputs(node)):
                continue
            value = _carry(orig, opt, node, k, corr, claimed)
            if value is not None:
                corr[outs[0]] = value
                progressed = True
        if not progressed:
            return corr


def _trace_layout(opt: _Optimized, corr: dict[str, str]) -> bool:
    """One pass of tracing through layout nodes, forward and back; True if it traced any."""
    changed = False
    for node in opt.nodes:
        ins, outs = opt.inputs(node), [o for o in node.output if o]
        if node.op_type not in LAYOUT_OPS or len(ins) != 1 or len(outs) != 1:
            continue
        (i,), (o,) = ins, outs
        if i in corr and o not in corr:
            corr[o] = corr[i]
            changed = True
        elif o in corr and i not in corr:
            corr[i] = corr[o]
            changed = True
    return changed


def _carry(
    orig: _Original,
    opt: _Optimized,
    node: onnx.NodeProto,
    anchor: int,
    corr: dict[str, str],
    claimed: dict[int, list[str]],
) -> str | None:
    """The original value `node` computes: its anchor's output carried forward through
    the element-wise nodes it fuses (sole consumers no other node is named after, reading
    nothing it does not read)."""
    outs = [o for o in orig.nodes[anchor].output if o and orig.runtime.get(o, False)]
    if len(outs) != 1 or outs[0] in opt.producer:
        return None  # no single runtime output, or another node computes it
    reads = {corr[i] for i in opt.inputs(node)}
    current = outs[0]
    while current not in orig.outputs:
        readers = [k for k in orig.consumers.get(current, []) if _is_runtime(orig, k)]
        if len(readers) != 1:
            break
        k = readers[0]
        if orig.nodes[k].op_type not in ELEMENTWISE_OPS:
            break
        if any(name != node.name for name in claimed.get(k, [])):
            break  # another onnxruntime node is named after it
        nexts = [o for o in orig.nodes[k].output if o and orig.runtime.get(o, False)]
        others = [i for i in orig.nodes[k].input if i and i != current]
        if len(nexts) != 1 or nexts[0] in opt.values:
            break
        if any(orig.runtime.get(i, False) and i not in reads for i in others):
            break
        current = nexts[0]
    return current


def _is_runtime(orig: _Original, k: int) -> bool:
    return any(orig.runtime.get(o, False) for o in orig.nodes[k].output if o)


def _covers(orig: _Original, opt: _Optimized, corr: dict[str, str]) -> dict[str, set[int] | str]:
    """Per node: the original node indices it computes, or why that is unknown."""
    covers: dict[str, set[int] | str] = {}
    for node in opt.nodes:
        covers[node.name] = _cover(orig, opt, node, corr)
    owners: dict[int, list[str]] = defaultdict(list)
    for name, cover in covers.items():
        for k in cover if isinstance(cover, set) else ():
            owners[k].append(name)
    for k, names in owners.items():
        if len(names) > 1 and orig.subs.get(k):
            for name in names:
                covers[name] = f"does not trace: {len(names)} nodes claim {_label(orig, k)}"
    return covers


def _cover(
    orig: _Original, opt: _Optimized, node: onnx.NodeProto, corr: dict[str, str]
) -> set[int] | str:
    ins, outs = opt.inputs(node), opt.outputs(node)
    untraced = next((v for v in [*outs, *ins] if v not in corr), None)
    if untraced is not None:
        return f"does not trace: its value {untraced!r} holds no original value"
    stops = {corr[i] for i in ins}
    covered: set[int] = set()
    stack, seen = [corr[o] for o in outs], set()
    while stack:
        value = stack.pop()
        if value in seen or value in stops or not orig.runtime.get(value, False):
            continue
        seen.add(value)
        k = orig.producer.get(value)
        if k is None:
            return f"does not trace: it reaches back to {value!r}, which it does not read"
        covered.add(k)
        stack.extend(i for i in orig.nodes[k].input if i)
    return covered


def _place_layout(
    layout: list[onnx.NodeProto], opt: _Optimized, placements: dict[str, Placement]
) -> None:
    """Layout nodes go with the computing node on their made-up side (module doc)."""
    pending = list(layout)
    while pending:
        waiting = []
        for node in pending:
            neighbours = _layout_neighbours(node, opt)
            states = [placements.get(n.name) for n in neighbours]
            if not neighbours or any(s is None for s in states):
                waiting.append(node)
                continue
            subs = sorted({s.subgraph for s in states if s and s.subgraph is not None})
            blocks = sorted({b for s in states if s for b in s.blocks})
            if len(subs) == 1 and all(s and s.subgraph is not None for s in states):
                placements[node.name] = Placement(subs[0], op=node.op_type, kind="layout")
            else:
                names = ", ".join(repr(n.name) for n in neighbours[:3])
                reason = f"is a layout node next to {names}, not on one subgraph"
                kind = "unplaced" if any(s and s.kind == "unplaced" for s in states) else "spans"
                placements[node.name] = Placement(
                    None, tuple(sorted({*subs, *blocks})), reason, node.op_type, kind
                )
        if len(waiting) == len(pending):
            return  # the rest wait on each other or on unplaced nodes
        pending = waiting


def _layout_neighbours(node: onnx.NodeProto, opt: _Optimized) -> list[onnx.NodeProto]:
    """The nodes on the made-up side of a layout node (else on both sides)."""
    before = [(i, opt.producer[i]) for i in opt.inputs(node) if i in opt.producer]
    after = [(o, c) for o in node.output if o for c in opt.consumers.get(o, [])]
    made_up = [n for value, n in [*before, *after] if value not in opt.original]
    return made_up or [n for _, n in [*before, *after]]


def _clusters(nodes: list[onnx.NodeProto], opt: _Optimized) -> list[list[onnx.NodeProto]]:
    """`nodes` grouped by the values they pass to each other."""
    names = {n.name for n in nodes}
    group = {n.name: n.name for n in nodes}

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for node in nodes:
        for value in opt.inputs(node):
            producer = opt.producer.get(value)
            if producer is not None and producer.name in names:
                group[root(node.name)] = root(producer.name)
    out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in nodes:
        out[root(node.name)].append(node)
    return list(out.values())


def _suspects(
    cluster: list[onnx.NodeProto],
    orig: _Original,
    opt: _Optimized,
    corr: dict[str, str],
    placements: dict[str, Placement],
) -> tuple[int, ...]:
    """The subgraphs an unplaced cluster's time may belong to: those holding the original
    nodes between the values it reads and the values it hands on, and those of the placed
    nodes around it; () when that region cannot be traced."""
    inside = {n.name for n in cluster}
    made = {o for n in cluster for o in n.output if o}
    reads = {i for n in cluster for i in opt.inputs(n) if i not in made}
    hands = {o for o in made if o in opt.graph_outputs}
    hands.update(o for o in made for c in opt.consumers.get(o, []) if c.name not in inside)
    if any(v not in corr for v in reads | hands):
        return ()
    stops = {corr[v] for v in reads}
    found: set[int] = set()
    stack, seen = [corr[v] for v in hands], set()
    while stack:
        value = stack.pop()
        if value in seen or value in stops or not orig.runtime.get(value, False):
            continue
        seen.add(value)
        k = orig.producer.get(value)
        if k is None:
            return ()
        found.update(orig.subs.get(k, ()))
        stack.extend(i for i in orig.nodes[k].input if i)
    around = [opt.producer[v] for v in reads if v in opt.producer]
    around += [c for o in made for c in opt.consumers.get(o, []) if c.name not in inside]
    for node in around:
        state = placements.get(node.name)
        if state is not None:
            found.update([state.subgraph] if state.subgraph is not None else state.blocks)
    return tuple(sorted(found))


def _ops(orig: _Original, cover: set[int]) -> str:
    kinds = dict.fromkeys(orig.nodes[k].op_type for k in sorted(cover))
    return "+".join(kinds)


def _label(orig: _Original, k: int) -> str:
    n = orig.nodes[k]
    return f"{n.name or '<unnamed>'} ({n.op_type}, #{k})"
