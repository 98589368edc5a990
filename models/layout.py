"""Layout rewrite of constant weights, done once at compile time.

A conv2d_nchw whose weight is a constant (groups 1) becomes
- conv2d_winograd (compiler/ops/winograd.py) reading the weight transformed,
  when it is 3x3, stride 1, dilation 1, with at least WINOGRAD_MIN_CHANNELS
  input channels and enough tiles to keep each of the Winograd GEMMs busy
  (`winograd_tile`);
- otherwise conv2d_nchwc reading the weight packed in output-channel blocks of
  16 (the last block zero-padded): the layout the default schedule's register
  tile loads as one vector. models/blocked_layout.py then turns most of these into
  convs on blocked activations.

A matmul or batch_matmul whose right operand is a constant 2-D matrix [K, N] becomes
matmul_panels (compiler/ops/matmul_panels.py) reading it in column panels
[ceil(N/16), K, 16] (the last one zero-padded; N under 64 and not a multiple of 16
stays plain): a register tile's columns of B are
then one contiguous stretch, where in [K, N] they are K rows N floats apart.
ConvNeXt-Tiny's products ran 1.0-1.3x faster with AVX-512 and 1.4-2.2x with AVX2
(Zen 4, 1 thread). A one-row product (a classifier at batch 1) reads each weight once
either way, but from memory: the panels stream in order where [K, N] is read a few
lines per 4 KB row, and ResNet-50's 2048 x 1000 classifier ran 749 -> 407 us with cold
caches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import prod

from compiler.ops import pack_conv_weight, pack_matmul_weight
from compiler.ops.shapes import padding4, positive_ints
from compiler.ops.winograd import TILES, transform_conv_weight
from models.graph import Graph, Node, Value

# float32 channels per block: one AVX-512 vector, two AVX2 ones (conv_register_budget
# counts a block as 16 / lanes registers)
BLOCK = 16
# Winograd F(m, 3) pays when each of its (m+2)^2 GEMMs has enough tiles to reuse the
# transformed weight: measured on ResNet-18's 3x3 convs against the direct default
# schedule (docs/benchmarks.md#winograd), 56x56 and 28x28 ran fastest with m = 4 (196 and 49
# tiles), 14x14 with m = 2 (49 tiles; m = 4 gives 16), 7x7 direct (m = 2 gives 16).
WINOGRAD_MIN_TILES = 32
# With activations kept blocked between direct convs (models/blocked_layout.py), a
# direct conv of few input channels beats its Winograd form (whose NCHW input and
# output also cut the blocked region): on Zen 4, 1 thread, SqueezeNet 1.1 ran 7.72 ms
# with Winograd from 16 channels, 7.10 from 64 and 6.59 with F(2, 3) only from 128
# (its 64-channel convs at 13x13), while ResNet-18 needs its 64-channel F(4, 3) convs
# at 56x56 (25.1 ms; 28.5 direct).
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_SMALL_TILE_MIN_CHANNELS = 128  # for F(2, 3), the tile of small images


def pack_conv_weights(graph: Graph, *, winograd: bool = True) -> Graph:
    """A copy of `graph` with packable convs rewritten (the original is unchanged);
    `winograd=False` keeps every conv direct."""
    return _rewrite_nodes(graph, lambda n, c, v: _rewrite(n, c, v, winograd))


def pack_matmul_weights(graph: Graph) -> Graph:
    """A copy of `graph` with its products by constant matrices reading them in panels
    (the original is unchanged)."""
    return _rewrite_nodes(graph, _panels)


def _rewrite_nodes(graph: Graph, rewrite: Callable[[Node, dict, dict[str, Value]], Node]) -> Graph:
    """`graph` with each node replaced by `rewrite(node, constants, values)` (which may
    add a constant and its value), the constants no node reads any more dropped."""
    constants = dict(graph.constants)
    values = dict(graph.values)
    nodes = [rewrite(n, constants, values) for n in graph.nodes]
    used = {i for n in nodes for i in n.inputs}
    constants = {k: v for k, v in constants.items() if k in used}
    return replace(graph, nodes=nodes, constants=constants, values=values)


# columns past a whole number of panels are padded only on this many panels or more
MIN_RAGGED_PANELS = 4


def _panels(node: Node, constants: dict, values: dict[str, Value]) -> Node:
    if node.op not in ("matmul", "batch_matmul") or node.kwargs.get("transpose_a"):
        return node
    weight = constants.get(node.inputs[1])
    if weight is None or weight.ndim != 2:
        return node
    a_shape = values[node.inputs[0]].shape
    if a_shape[-2:-1] == (1,) and prod(a_shape[:-2]) > 1:
        return node  # rows on an outer axis ([tokens, 1, features]): the batched form
    transpose = bool(node.kwargs.get("transpose_b"))
    columns = weight.shape[0] if transpose else weight.shape[1]
    if columns % BLOCK and columns < MIN_RAGGED_PANELS * BLOCK:
        return node  # a few columns: the padding would be most of the work
    name = f"{node.inputs[1]}__panels{BLOCK}" + ("t" if transpose else "")
    if name not in constants:
        constants[name] = pack_matmul_weight(weight.T if transpose else weight, BLOCK)
        values[name] = Value(name, tuple(constants[name].shape))
    attrs = (("columns", columns),) if columns % BLOCK else ()
    return replace(node, op="matmul_panels", inputs=(node.inputs[0], name), attrs=attrs)


def winograd_tile(node: Node, data_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """The Winograd tile size m for conv2d_nchw `node`, 0 to keep it direct."""
    kw = node.kwargs
    ones = all(
        positive_ints("conv2d_nchw", k, kw.get(k, 1), 2) == (1, 1)  # type: ignore[arg-type]
        for k in ("stride", "dilation")
    )
    if not ones or kw.get("groups", 1) != 1 or tuple(weight_shape[2:]) != (3, 3):
        return 0
    if len(data_shape) != 4 or data_shape[1] < WINOGRAD_MIN_CHANNELS:
        return 0
    top, left, bottom, right = padding4("conv2d_nchw", kw.get("padding", 0))  # type: ignore[arg-type]
    n, _, h, w = data_shape
    oh, ow = h + top + bottom - 2, w + left + right - 2
    for m in sorted(TILES, reverse=True):
        if n * -(-oh // m) * -(-ow // m) >= WINOGRAD_MIN_TILES:
            return m if m > 2 or data_shape[1] >= WINOGRAD_SMALL_TILE_MIN_CHANNELS else 0
    return 0


def _rewrite(node: Node, constants: dict, values: dict[str, Value], winograd: bool) -> Node:
    if node.op != "conv2d_nchw" or node.kwargs.get("groups", 1) != 1:
        return node
    weight = constants.get(node.inputs[1])
    if weight is None:
        return node
    m = winograd_tile(node, values[node.inputs[0]].shape, weight.shape) if winograd else 0
    if m:
        name = f"{node.inputs[1]}__winograd{m}"
        if name not in constants:
            constants[name] = transform_conv_weight(weight, m)
            values[name] = Value(name, tuple(constants[name].shape))
        attrs = (("padding", node.kwargs.get("padding", 0)), ("tile", m))
        return replace(node, op="conv2d_winograd", inputs=(node.inputs[0], name), attrs=attrs)
    name = f"{node.inputs[1]}__nchwc{BLOCK}"
    if name not in constants:
        constants[name] = pack_conv_weight(weight, BLOCK)
        values[name] = Value(name, tuple(constants[name].shape))
    attrs = tuple((k, v) for k, v in node.attrs if k != "groups")
    if weight.shape[0] % BLOCK:
        attrs += (("filters", int(weight.shape[0])),)
    return replace(node, op="conv2d_nchwc", inputs=(node.inputs[0], name), attrs=attrs)
