"""Mapping onnxruntime's nodes to our subgraphs (best effort), for the per-task
onnxruntime times of models.ort_profile.

onnxruntime fuses and renames nodes: Conv+Relu becomes "fused Conv_3", MatMul+Add
becomes "MatMul_14/MatMulAddFusion", NCHWc convs are named after the original output
value ("relu_8_nchwc", their outputs are new "reorder_token_N" values), Gemm
reshapes are inserted ("gemm_input_reshape_token_2"). The session's optimized
graph is saved (`optimized_model_filepath`) and each of its nodes is mapped by,
in order: (1) its output values that exist in the original model, traced back to
the original node that produced them (through nodes we fold away, like Identity
or BatchNormalization) and so to the subgraph holding it (our `Node.source`
names the original node's index); (2) its name with onnxruntime's decorations
stripped, looked up as an original node or value name; (3) the nearest mapped
node downstream, then upstream, in the optimized graph (inserted reshapes and
reorders). Whatever is left is reported as unmapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import onnx

from models.partition import Partition

_SOURCE_INDEX = re.compile(r"#(\d+)\)$")
_DECORATIONS = [
    re.compile(r"^fused "),  # fused Conv_3
    re.compile(r"/.*$"),  # MatMul_14/MatMulAddFusion
    re.compile(r"_nchwc$"),  # relu_8_nchwc
    re.compile(r"(_new_reshape|_token_\d+)+$"),  # Reshape_45_new_reshape, Gelu_token_42
]


@dataclass
class NodeMap:
    """onnxruntime node name -> our subgraph id: the optimized graph's nodes mapped
    (`mapped`), and any other name by its decorations stripped (`by_name`)."""

    mapped: dict[str, int]
    by_name: Callable[[str], int | None]

    def subgraph(self, name: str) -> int | None:
        found = self.mapped.get(name)
        return found if found is not None else self.by_name(name)


def map_nodes(
    original: onnx.ModelProto, optimized: onnx.ModelProto | None, part: Partition
) -> NodeMap:
    """Map every node of onnxruntime's optimized graph that can be mapped (module doc)."""
    resolve = _value_resolver(original, part)
    by_name = _name_index(original, resolve)
    nodes = list(optimized.graph.node) if optimized is not None else []
    direct: dict[str, int] = {}
    for node in nodes:
        sub = next((s for s in map(resolve, node.output) if s is not None), None)
        if sub is None:
            sub = by_name(node.name)
        if sub is not None:
            direct[node.name] = sub
    mapped = dict(direct)
    for node in nodes:
        if node.name not in mapped:
            sub = _nearest(node, nodes, direct)
            if sub is not None:
                mapped[node.name] = sub
    return NodeMap(mapped, by_name)


def _value_resolver(original: onnx.ModelProto, part: Partition) -> Callable[[str], int | None]:
    """Original value name -> the subgraph computing it (through folded nodes), or None."""
    sub_of_index: dict[int, int] = {}
    for sub in part.subgraphs:
        for node in sub.nodes:
            match = _SOURCE_INDEX.search(node.source)
            if match:
                sub_of_index[int(match.group(1))] = sub.id
    producer = {out: k for k, n in enumerate(original.graph.node) for out in n.output if out}
    memo: dict[str, int | None] = {}

    def resolve(value: str, depth: int = 0) -> int | None:
        if value in memo or depth > 50:
            return memo.get(value)
        memo[value] = None  # cycle guard
        k = producer.get(value)
        if k is not None:
            found = sub_of_index.get(k)
            inputs = original.graph.node[k].input
            for name in inputs if found is None else ():
                found = resolve(name, depth + 1)
                if found is not None:
                    break
            memo[value] = found
        return memo[value]

    return resolve


def _name_index(
    original: onnx.ModelProto, resolve: Callable[[str], int | None]
) -> Callable[[str], int | None]:
    """Node name with onnxruntime's decorations stripped -> subgraph (node or value name)."""
    names: dict[str, int] = {}
    for node in original.graph.node:
        sub = next((s for s in map(resolve, node.output) if s is not None), None)
        if sub is not None:
            names.setdefault(node.name, sub)
            for out in node.output:
                names.setdefault(out, sub)

    def lookup(name: str) -> int | None:
        candidates = [name]
        for pattern in _DECORATIONS:
            candidates.append(pattern.sub("", candidates[-1]))
        return next((names[c] for c in candidates if c in names), None)

    return lookup


def _nearest(
    node: onnx.NodeProto, nodes: list[onnx.NodeProto], direct: dict[str, int]
) -> int | None:
    """The subgraph of the closest directly mapped node downstream, else upstream."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producers: dict[str, onnx.NodeProto] = {}
    for n in nodes:
        for v in n.input:
            consumers.setdefault(v, []).append(n)
        for v in n.output:
            producers[v] = n
    for step in (
        lambda n: [c for v in n.output for c in consumers.get(v, [])],
        lambda n: [producers[v] for v in n.input if v in producers],
    ):
        frontier, seen = [node], {node.name}
        for _ in range(8):
            frontier = [m for n in frontier for m in step(n) if m.name not in seen]
            seen.update(m.name for m in frontier)
            hit = next((direct[m.name] for m in frontier if m.name in direct), None)
            if hit is not None:
                return hit
    return None
