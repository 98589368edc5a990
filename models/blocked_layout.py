"""Layout propagation: activations carried in channel blocks from conv to conv.

After the weight rewrite (models/layout.py) a direct conv reads NCHW and writes NCHW,
re-indexing its blocked result [N, F/b, OH, OW, b] in its epilogue: every store is a
scatter across channel planes, and the next conv reads one channel plane at a time.
This pass keeps the blocked layout [N, ceil(C/b), H, W, b] between the ops that can
work on it, as onnxruntime's NCHWc transformer and TVM's alter-op-layout do:

- direct convs (`conv2d_nchwc` nodes) become `conv2d_blocked`, reading NCHW data (a
  network's first conv) or blocked data (their weight repacked [F/b, C/b, KH, KW, b, b]);
- depthwise convs, max / average / global average pools, concat along channels (every
  input a whole number of blocks) and the element-wise ops of ELEMENTWISE follow when
  all their activation inputs are blocked; a bias or any per-channel constant is
  repacked [1, C/b, 1, 1, b];
- channels past C are zeros out of a conv (zero filters, zero bias), and the
  element-wise ops allowed keep them finite, so the next conv's zero weights for those
  channels cancel them; depthwise convs keep them in their own lanes.

An op is kept blocked only if every reader of its output is blocked too, or takes the
NCHW copy at a cheap place: the graph's outputs and ops that are neither element-wise
nor convs (a flatten before the classifier, a concat of parts that are not whole blocks
or that a channel shuffle reads: ShuffleNetV2 ran 0.70x onnxruntime's speed without
its branches blocked, 0.90x with them, Zen 4, 1 thread). Where a blocked value would meet a
Winograd conv or an NCHW element-wise op (ResNet's residual adds beside Winograd convs)
the region shrinks instead, so those convs keep today's fused re-indexing rather than
gaining a conversion pass. The conversion back, `unblock_channels`, is an index remap
inlined into its reader where the partition can.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from compiler.ops import (
    pack_channel_vector,
    pack_conv_weight_blocked,
    pack_depthwise_weight,
)
from models.graph import Graph, Node, Value

# element-wise ops that map finite values to finite values (the padding channels stay
# finite) and broadcast like numpy
ELEMENTWISE = {
    "relu", "clip", "leaky_relu", "sigmoid", "tanh", "hard_sigmoid", "hard_swish", "gelu",
    "add", "subtract", "multiply", "maximum", "minimum", "negative", "absolute", "erf",
}  # fmt: skip
POOLS = {"max_pool2d", "avg_pool2d", "global_avg_pool2d"}
# readers that keep NCHW inputs: a blocked value read by one is not worth converting
NCHW_CONVS = {"conv2d_winograd", "conv2d_nchw", "depthwise_conv2d_nchw"}


def propagate_blocked_layout(graph: Graph, block: int) -> Graph:
    """A copy of `graph` (after models/layout.py's weight rewrite) whose direct convs
    and the ops between them run on blocked data; the graph's inputs and outputs stay
    NCHW."""
    blocked = _blocked_nodes(graph, block)
    if not blocked:
        return graph
    constants, values = dict(graph.constants), dict(graph.values)
    outputs = {v.name for v in graph.outputs}
    renamed: dict[str, str] = {}  # NCHW value -> its blocked value
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.output not in blocked:
            nodes.append(node)
            continue
        rewritten = _rewrite(node, graph, renamed, constants, values, block)
        nodes.append(rewritten)
        renamed[node.output] = rewritten.output
        nchw_readers = [c for c in graph.consumers(node.output) if c.output not in blocked]
        if nchw_readers or node.output in outputs:
            channels = graph.values[node.output].shape[1]
            nodes.append(
                Node(
                    f"{node.name}__unblock",
                    "unblock_channels",
                    (rewritten.output,),
                    node.output,
                    (("channels", channels),),
                )
            )
    used = {i for n in nodes for i in n.inputs} | outputs | {n.output for n in nodes}
    used |= {v.name for v in graph.inputs}
    constants = {k: v for k, v in constants.items() if k in used}
    values = {k: v for k, v in values.items() if k in used}
    return replace(graph, nodes=nodes, constants=constants, values=values)


def _blocked_nodes(graph: Graph, block: int) -> set[str]:
    """The outputs of the nodes to run blocked: the candidates, shrunk until every
    blocked op's activation inputs are blocked (a conv may read NCHW) and no blocked
    value reaches an NCHW conv or an NCHW element-wise op."""
    blocked = {n.output for n in graph.nodes if _can_block(n, graph, block)}
    while True:
        drop = set()
        for node in graph.nodes:
            if node.output not in blocked:
                continue
            activations = [i for i in node.inputs if i not in graph.constants]
            if node.op == "conv2d_nchwc":
                activations = activations[1:]  # its data may be either
            if not all(i in blocked for i in activations) or (
                not _shrinking_pool(node, graph)
                and any(_bad_exit(c, blocked) for c in graph.consumers(node.output))
            ):
                drop.add(node.output)
        if not drop:
            return blocked
        blocked -= drop


def _shrinking_pool(node: Node, graph: Graph) -> bool:
    """A max or average pool that writes fewer values than it reads (a ResNet stem's
    3x3 stride-2 max pool): run blocked, then converted once, it costs less than
    converting its input inside its NCHW loops (ResNet-18's stem pool: 0.6 ms there,
    onnxruntime 0.1-0.2), so its NCHW readers do not stop the region."""
    if node.op not in ("max_pool2d", "avg_pool2d"):
        return False
    out, data = graph.values[node.output].shape, graph.values[node.inputs[0]].shape
    return out[2] * out[3] < data[2] * data[3]


def _bad_exit(reader: Node, blocked: set[str]) -> bool:
    """An NCHW reader that would need a conversion pass of its own (not worth it)."""
    costly = reader.op in NCHW_CONVS | ELEMENTWISE | {"bias_add", "conv2d_nchwc"}
    return reader.output not in blocked and costly


def _can_block(node: Node, graph: Graph, block: int) -> bool:
    shape = graph.values[node.output].shape
    if len(shape) != 4 or graph.values[node.output].dtype != "float32":
        return False
    kw = node.kwargs
    if node.op == "conv2d_nchwc":
        return True
    if node.op == "depthwise_conv2d_nchw":
        weight = graph.constants.get(node.inputs[1])
        return weight is not None and weight.shape[0] == graph.values[node.inputs[0]].shape[1]
    if node.op in POOLS:
        return True
    if node.op == "concat":
        return kw.get("axis") in (1, -3) and all(
            graph.values[i].shape[1] % block == 0 for i in node.inputs
        )
    if node.op == "bias_add":
        return kw.get("axis", 1) in (1, -3) and node.inputs[1] in graph.constants
    if node.op in ELEMENTWISE:
        return all(_operand_fits(graph, i, shape) for i in node.inputs)
    return False


def _operand_fits(graph: Graph, name: str, shape: tuple[int, ...]) -> bool:
    """An element-wise operand that has a blocked form: an activation of the output's
    shape or [N, C, 1, 1] (a squeeze-excitation gate), or a constant that is one number
    or one per channel."""
    value = graph.values[name]
    if name not in graph.constants:
        return len(value.shape) == 4 and value.shape in (shape, (*shape[:2], 1, 1))
    return _constant_form(graph.constants[name], shape[1]) is not None


def _constant_form(array: np.ndarray, channels: int) -> str | None:
    """ "scalar" (broadcasts as it is), "channel" (one per channel) or None."""
    if array.size == 1:
        return "scalar"
    dims = [d for d in array.shape]
    while dims and dims[0] == 1 and len(dims) > 3:
        dims.pop(0)
    if len(dims) == 3 and dims[0] == channels and dims[1:] == [1, 1]:
        return "channel"
    return None


def _rewrite(
    node: Node,
    graph: Graph,
    renamed: dict[str, str],
    constants: dict[str, np.ndarray],
    values: dict[str, Value],
    block: int,
) -> Node:
    """`node` on blocked data, its output renamed `<output>__blocked`."""
    n, c, h, w = graph.values[node.output].shape
    out = f"{node.output}__blocked"
    values[out] = Value(out, (n, -(-c // block), h, w, block))

    def constant(name: str, array: np.ndarray) -> str:
        if name not in constants:
            constants[name] = array
            values[name] = Value(name, tuple(array.shape))
        return name

    data = renamed.get(node.inputs[0], node.inputs[0])
    if node.op == "conv2d_nchwc":
        attrs = tuple((k, v) for k, v in node.attrs if k != "filters")
        weight = node.inputs[1]
        if data != node.inputs[0]:
            packed = graph.constants[weight]
            unpacked = _unpack_nchwc(packed, graph.values[node.inputs[0]].shape[1])
            weight = constant(f"{weight}__blocked", pack_conv_weight_blocked(unpacked, block))
        return replace(node, op="conv2d_blocked", inputs=(data, weight), output=out, attrs=attrs)
    if node.op == "depthwise_conv2d_nchw":
        weight = graph.constants[node.inputs[1]]
        name = constant(f"{node.inputs[1]}__blocked", pack_depthwise_weight(weight, block))
        return replace(node, op="depthwise_conv2d_blocked", inputs=(data, name), output=out)
    if node.op == "bias_add":
        bias = constant(
            f"{node.inputs[1]}__blocked",
            pack_channel_vector(graph.constants[node.inputs[1]], block),
        )
        return replace(node, op="add", inputs=(data, bias), output=out, attrs=())
    inputs = []
    for name in node.inputs:
        if name in renamed:
            inputs.append(renamed[name])
        elif name in graph.constants and _constant_form(graph.constants[name], c) == "channel":
            vector = graph.constants[name].reshape(-1)
            inputs.append(constant(f"{name}__blocked", pack_channel_vector(vector, block)))
        else:
            inputs.append(name)
    return replace(node, inputs=tuple(inputs), output=out)


def _unpack_nchwc(packed: np.ndarray, channels: int) -> np.ndarray:
    """pack_conv_weight's [F/b, C, KH, KW, b] back to [F/b * b, C, KH, KW] (zero filters
    past F kept: they stay zero in the blocked packing)."""
    blocks, c, kh, kw, block = packed.shape
    assert c == channels
    return packed.transpose(0, 4, 1, 2, 3).reshape(blocks * block, c, kh, kw)
