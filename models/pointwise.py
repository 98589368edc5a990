"""1x1 convs on NCHW data computed as the matrix products they are.

A 1x1 conv of stride 1 without padding is weight [F, C] times data [C, H x W]: every
plane is one contiguous row. Left NCHW by layout propagation (models/blocked_layout.py:
beside a Winograd conv or a grouped one), such a conv ran as a blocked register tile
whose epilogue scatters each result across F channel planes, at 0.4-0.9 of the FMA peak
(Zen 4, 1 thread; docs/networks.md#pointwise). Here it is taken back to conv2d_nchw on its
plain weight (`pointwise_as_matmul`), and its subgraph is built on flat planes
[N, C, 1, H x W] (`flat_plane_shapes`), so the default schedule tiles it as a matrix
product: filters x vectors of pixels, every vector whole, every store contiguous
(compiler/schedule/conv_tiles.py `tile_pointwise`). The flat shapes are views of the
same buffers (`Subgraph.arrays`).

Only planes of a whole number of 16-float vectors: at 14x14 (196 pixels) the blocked
tile was as fast or faster (0.87-0.97 of it with 14-lane vectors).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from compiler.ops.shapes import padding4, positive_ints
from models.graph import Graph, Node, Value

PLANE_VECTOR = 16  # floats: a plane of a multiple of this many pixels is taken flat
# ops a flat subgraph may hold besides its conv: they map each pixel to itself
PIXELWISE = {
    "bias_add", "relu", "clip", "leaky_relu", "sigmoid", "tanh", "hard_sigmoid", "hard_swish",
    "gelu", "add", "subtract", "multiply", "divide", "maximum", "minimum", "negative",
    "absolute", "erf", "exp",
}  # fmt: skip


def is_pointwise_conv(node: Node, graph: Graph) -> bool:
    """A conv2d_nchw / conv2d_nchwc `node` with a constant 1x1 weight, stride 1, no
    padding and one group, whose output plane is a whole number of vectors."""
    if node.op not in ("conv2d_nchw", "conv2d_nchwc") or node.inputs[1] not in graph.constants:
        return False
    kw = node.kwargs
    weight = graph.constants[node.inputs[1]]
    kernel = weight.shape[2:4]
    stride = positive_ints(node.op, "stride", kw.get("stride", 1), 2)  # type: ignore[arg-type]
    pads = padding4(node.op, kw.get("padding", 0))  # type: ignore[arg-type]
    shape = graph.values[node.output].shape
    return (
        tuple(kernel) == (1, 1)
        and stride == (1, 1)
        and not any(pads)
        and kw.get("groups", 1) == 1
        and len(shape) == 4
        and (shape[2] * shape[3]) % PLANE_VECTOR == 0
    )


def pointwise_as_matmul(graph: Graph, remaps: frozenset[str] = frozenset()) -> Graph:
    """A copy of `graph` whose pointwise conv2d_nchwc nodes (NCHW in and out: those layout
    propagation did not block) are conv2d_nchw nodes on the plain [F, C, 1, 1] weight;
    not those reading the output of an op of `remaps` alone (the partition inlines such
    a remap into the conv's subgraph, which then is not flat)."""
    constants = dict(graph.constants)
    producer = {n.output: n.op for n in graph.nodes}
    readers = Counter(i for n in graph.nodes for i in n.inputs)
    nodes = []
    for node in graph.nodes:
        if node.op != "conv2d_nchwc" or not is_pointwise_conv(node, graph):
            nodes.append(node)
            continue
        data = node.inputs[0]
        if producer.get(data) in remaps and readers[data] == 1:
            nodes.append(node)
            continue
        name = f"{node.inputs[1]}__plain"
        if name not in constants:
            constants[name] = _unpack(graph.constants[node.inputs[1]], node.kwargs.get("filters"))
        attrs = tuple((k, v) for k, v in node.attrs if k != "filters")
        nodes.append(replace(node, op="conv2d_nchw", inputs=(node.inputs[0], name), attrs=attrs))
    used = {i for n in nodes for i in n.inputs}
    constants = {k: v for k, v in constants.items() if k in used}
    values = dict(graph.values)
    for name, array in constants.items():
        values.setdefault(name, Value(name, tuple(array.shape)))
    return replace(graph, nodes=nodes, constants=constants, values=values)


def _unpack(packed: np.ndarray, filters: object) -> np.ndarray:
    """pack_conv_weight's [F/b, C, 1, 1, b] back to [F, C, 1, 1] (zero filters dropped)."""
    blocks, c, kh, kw, block = packed.shape
    plain = packed.transpose(0, 4, 1, 2, 3).reshape(blocks * block, c, kh, kw)
    return np.ascontiguousarray(plain[: int(filters) if filters else blocks * block])


def flat_plane_shapes(nodes: list[Node], graph: Graph) -> dict[str, tuple[int, ...]]:
    """The shapes a subgraph of `nodes` takes its inputs in: {} unless its anchor is a
    pointwise conv2d_nchw (`is_pointwise_conv`) and every other node maps pixels to
    themselves; then each activation input of the conv's plane [N, C, H, W] as
    [N, C, 1, H x W]. Constants must be numbers or per-channel [..., 1, 1] (a bias_add's
    vector too), which broadcast the same over either shape."""
    convs = [n for n in nodes if n.op == "conv2d_nchw"]
    if len(convs) != 1 or not is_pointwise_conv(convs[0], graph):
        return {}
    conv = convs[0]
    if any(n is not conv and n.op not in PIXELWISE for n in nodes):
        return {}
    h, w = graph.values[conv.output].shape[2:]
    inside = {n.output for n in nodes}
    shapes: dict[str, tuple[int, ...]] = {}
    for node in nodes:
        for k, name in enumerate(node.inputs):
            if name in inside or (node is conv and k == 1):
                continue
            shape = graph.values[name].shape
            if name in graph.constants:
                per_channel = len(shape) >= 2 and tuple(shape[-2:]) == (1, 1)
                bias = node.op == "bias_add" and k == 1
                if not (per_channel or bias or int(np.prod(shape)) == 1):
                    return {}
            elif len(shape) == 4 and tuple(shape[2:]) == (h, w):
                shapes[name] = (shape[0], shape[1], 1, h * w)
            elif not (len(shape) == 4 and tuple(shape[2:]) == (1, 1)):
                return {}
    return shapes
