"""Layout rewrite of constant weights, done once at compile time.

A conv2d_nchw whose weight is a constant (groups 1) becomes conv2d_nchwc
reading the weight packed in output-channel blocks of 16 (the last block
zero-padded): the layout the default schedule's register tile loads as one
vector.
"""

from __future__ import annotations

from dataclasses import replace

from compiler.ops import pack_conv_weight
from models.graph import Graph, Node, Value

BLOCK = 16  # float32 lanes of an AVX-512 register


def pack_conv_weights(graph: Graph) -> Graph:
    """A copy of `graph` with packable convs rewritten (the original is unchanged)."""
    constants = dict(graph.constants)
    values = dict(graph.values)
    nodes = [_rewrite(n, constants, values) for n in graph.nodes]
    used = {i for n in nodes for i in n.inputs}
    constants = {k: v for k, v in constants.items() if k in used}
    return replace(graph, nodes=nodes, constants=constants, values=values)


def _rewrite(node: Node, constants: dict, values: dict[str, Value]) -> Node:
    if node.op != "conv2d_nchw" or node.kwargs.get("groups", 1) != 1:
        return node
    weight = constants.get(node.inputs[1])
    if weight is None:
        return node
    name = f"{node.inputs[1]}__nchwc{BLOCK}"
    if name not in constants:
        constants[name] = pack_conv_weight(weight, BLOCK)
        values[name] = Value(name, tuple(constants[name].shape))
    attrs = tuple((k, v) for k, v in node.attrs if k != "groups")
    if weight.shape[0] % BLOCK:
        attrs += (("filters", int(weight.shape[0])),)
    return replace(node, op="conv2d_nchwc", inputs=(node.inputs[0], name), attrs=attrs)
