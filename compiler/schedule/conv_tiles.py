"""Register tiles of the blocked convs (`conv2d_nchwc`, `conv2d_blocked`,
`depthwise_conv2d_blocked`) and of wide depthwise convs, sized to the target's vector
registers (`conv_register_budget`, from compiler/target.py): what the default
schedule computes a conv's output with (docs/networks.md#default-schedule)."""

from __future__ import annotations

from functools import cache

from compiler.ops.tags import CONV2D_NCHW, DEPTHWISE_CONV2D_BLOCKED
from compiler.schedule.state import State
from compiler.schedule.steps import Annotate, Annotation, ComputeAt, Fuse, Reorder, Split
from compiler.schedule.tile_factors import (
    FEW_REGISTER_MIN_ACCUMULATORS,
    OPERAND_REGISTERS,
    few_registers,
    row_factor,
    tile_rows,
    vector_factor,
)
from compiler.target import Target, host_target
from compiler.te.tensor import Tensor

# A blocked conv's register tile (conv_register_budget): accumulators are vectors of
# CONV_VECTOR_FLOATS floats (16 / lanes native registers each), in at most
# CONV_ACCUMULATOR_REGISTERS registers (16 independent FMA chains hide the FMA latency);
# CONV_RESERVED_REGISTERS stay free for the broadcast input pixel, the weight vector (two
# ymm registers with AVX2) and the loop's other values.
CONV_VECTOR_FLOATS = 16
CONV_ACCUMULATOR_REGISTERS = 16
CONV_RESERVED_REGISTERS = 4
CONV_TILE_WIDTH = 14  # output pixels per register tile when 14 accumulators fit (AVX-512)
# Else 3 pixels: with 16-register AVX2 14 pixels (28 ymm registers) spilled; 3 pixels and
# at most 6 vectors (12 registers) measured fastest there: 2.5-2.7x the AVX-512 tile on
# the four ResNet-18 3x3 convs (docs/benchmarks.md#codegen).
CONV_TILE_WIDTH_FEW_REGISTERS = 3
# A depthwise conv's tile on NCHW data (tile_depthwise): at most this many accumulator
# vectors, whole rows of them
DEPTHWISE_ACCUMULATORS = 16


@cache
def conv_register_budget(target: Target | None = None) -> tuple[int, int]:
    """(most pixels, most accumulator vectors of 16 floats) of a blocked conv's register
    tile on `target` (default: this host): (14, 16) with AVX-512's 32 registers; with 16
    registers (3, 6) on AVX2, six 16-float vectors being 12 ymm registers (3, 3 with SSE).

    The accumulators get the target's vector registers but CONV_RESERVED_REGISTERS, at
    most CONV_ACCUMULATOR_REGISTERS; a 16-float vector takes 16 / lanes of them. A tile
    is CONV_TILE_WIDTH pixels when that many accumulators fit, else
    CONV_TILE_WIDTH_FEW_REGISTERS (the measured choice for AVX2)."""
    target = target or host_target()
    registers = min(CONV_ACCUMULATOR_REGISTERS, target.vector_registers - CONV_RESERVED_REGISTERS)
    per_vector = max(1, CONV_VECTOR_FLOATS // target.vector_lanes)
    vectors = max(1, registers // per_vector)
    if vectors >= CONV_TILE_WIDTH:
        return CONV_TILE_WIDTH, vectors
    return min(CONV_TILE_WIDTH_FEW_REGISTERS, vectors), vectors


def tile_depthwise(s: State, p: int, c: int) -> State:
    """Depthwise conv on a wide image: the tile is whole output rows, vectors along them,
    as many rows as keep DEPTHWISE_ACCUMULATORS vectors or fewer; per tap the tile
    broadcasts one weight into an FMA on every vector (independent chains: one row
    of one vector at a time was a chain of KH x KW dependent FMAs, 1.5 ms for ConvNeXt's
    7x7 conv on 96 x 56 x 56, onnxruntime's 0.3)."""
    _, _, oh, ow = s.stages[c].op.shape
    target = host_target()
    vec = vector_factor(ow)
    per_vector = -(-vec // target.vector_lanes)  # native registers per vector
    budget = min(DEPTHWISE_ACCUMULATORS, target.vector_registers - CONV_RESERVED_REGISTERS)
    rows = row_factor(oh, max(1, budget // (per_vector * (ow // vec))))
    s = s.apply(Split(c, 3, (vec,)))  # [n, ch, y, x.o, x.i]
    s = s.apply(Split(c, 2, (rows,)))  # [n, ch, y.o, y.i, x.o, x.i]
    s = s.apply(Fuse(c, (0, 1, 2)))  # [rows tile, y.i, x.o, x.i]
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, 3, Annotation.VECTORIZE))
    s = s.apply(Split(p, 3, (vec,)))  # [n, ch, y, x.o, x.i, ry, rx]
    s = s.apply(Split(p, 2, (rows,)))  # [n, ch, y.o, y.i, x.o, x.i, ry, rx]
    s = s.apply(Reorder(p, (0, 1, 2, 6, 7, 3, 4, 5)))  # [..., y.o, ry, rx, y.i, x.o, x.i]
    s = s.apply(Annotate(p, 5, Annotation.UNROLL))
    s = s.apply(Annotate(p, 6, Annotation.UNROLL))
    s = s.apply(Annotate(p, 7, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def tile_blocked_conv(s: State, p: int, c: int) -> State:
    """Register tile of a blocked conv: `width` output pixels x `mult` vectors of b channels.

    Per (rc, ry, rx) the tile loads mult x b weights as vectors and broadcasts each
    of `width` input pixels into mult FMAs (width x mult accumulators); the epilogue
    stage c (NCHW) runs its tile loops [n, f.o, y, x.o] fused in parallel, the conv
    computed inside them.
    """
    _, blocks, _, ow, block = s.stages[p].op.shape
    width, mult, lanes = nchw_tile_plan(ow, blocks)
    s = s.apply(Split(c, 3, (width,)))  # [n, f, y, x.o, x.i]
    s = s.apply(Split(c, 1, (mult * block,)))  # [n, f.o, f.i, y, x.o, x.i]
    s = s.apply(Reorder(c, (0, 1, 3, 4, 5, 2)))
    s = s.apply(Fuse(c, (0, 1, 2, 3)))  # [tile, x.i, f.i]
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Split(p, 3, (width,)))  # [n, fo, y, x.o, x.i, fi, rc, ry, rx]
    s = s.apply(Split(p, 1, (mult,)))  # [n, fo.o, fo.i, y, x.o, x.i, fi, rc, ry, rx]
    s = s.apply(Reorder(p, (0, 1, 3, 4, 7, 8, 9, 2, 5, 6)))
    s = split_block_lanes(s, p, 4, lanes)
    last = len(s.stages[p].iters) - 1
    s = s.apply(Annotate(p, last - 2, Annotation.UNROLL))
    s = s.apply(Annotate(p, last - 1, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def nchw_tile_plan(width: int, blocks: int, target: Target | None = None) -> tuple[int, int, int]:
    """(pixels, channel blocks, lanes) of the register tile of a conv writing NCHW data
    (`tile_blocked_conv`): `conv_tile_shape`'s whole blocks, but on a few-register
    target (AVX2) at a width with no divisor up to its 3 pixels (7, 13: primes) the
    whole row of pixels on one native vector of a block, the block's halves one after
    the other, as `few_register_tile` does. The one pixel of 4 blocks it replaces loaded
    8 weight vectors per broadcast pixel, a new 112 KB of weights for every pixel:
    RegNet's 1x1 conv 440 -> 440 on 7x7, 44 -> 57 GFLOP/s (AVX2 code on Zen 4)."""
    target = target or host_target()
    pixels, mult = conv_tile_shape(width, blocks, target)
    if few_registers(target) and pixels == 1 and width > 1:
        narrow = row_factor(width, target.vector_registers - OPERAND_REGISTERS)
        if narrow > 1:
            return narrow, 1, target.vector_lanes
    return pixels, mult, CONV_VECTOR_FLOATS


def tile_blocked_output(s: State, p: int, c: int) -> State:
    """Register tile of a conv writing blocked data [N, F/b, OH, OW, b] (conv2d_blocked,
    depthwise_conv2d_blocked): `rows` x `width` output pixels x `mult` blocks of b
    channels.

    Per reduction step the tile loads `mult` weight vectors and broadcasts each input
    pixel into them (a depthwise conv: one block, one input vector per pixel); the
    epilogue c stores whole vectors. The pixels lie along one row, or, when the row's
    width has no divisor near the register budget (111 = 3 x 37), in a few rows.
    """
    _, blocks, oh, ow, _ = s.stages[c].op.shape
    pixels, accumulators = conv_register_budget()
    depthwise = s.stages[p].op.tag == DEPTHWISE_CONV2D_BLOCKED
    width, rows, lanes = row_factor(ow, pixels), 1, CONV_VECTOR_FLOATS
    if not depthwise and few_registers():
        width, mult, lanes = conv_tile_plan(ow, blocks)
    else:
        if width < max(2, pixels // 2):
            rows = row_factor(oh, pixels // width)
        if depthwise:
            mult = 1
        elif rows == 1:
            width, mult = conv_tile_shape(ow, blocks)
        else:
            mult = conv_block_multiple(width * rows, blocks, accumulators)
    n_reduce = len(s.stages[p].op.reduce_axes)
    for k in (c, p):
        s = s.apply(Split(k, 3, (width,)))  # [n, fo, y, x.o, x.i, fi, red...]
        s = s.apply(Split(k, 2, (rows,)))  # [n, fo, y.o, y.i, x.o, x.i, fi, red...]
        s = s.apply(Split(k, 1, (mult,)))  # [n, fo.o, fo.i, y.o, y.i, x.o, x.i, fi, red...]
        reduce = list(range(8, 8 + n_reduce)) if k == p else []
        s = s.apply(Reorder(k, (0, 1, 3, 5, *reduce, 2, 4, 6, 7)))
    s = s.apply(Fuse(c, (0, 1, 2, 3)))  # [tile, fo.i, y.i, x.i, fi]
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, 4, Annotation.VECTORIZE))
    s = split_block_lanes(s, p, 4, lanes)
    last = len(s.stages[p].iters) - 1
    for i in (last - 3, last - 2, last - 1):
        s = s.apply(Annotate(p, i, Annotation.UNROLL))
    s = s.apply(Annotate(p, last, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def is_flat_pointwise(op: Tensor) -> bool:
    """A 1x1 conv2d_nchw of stride 1, no padding, one group, on flat planes [N, C, 1, P]
    (models/pointwise.py): the matrix product of the weight [F, C] and the data [C, P]."""
    if op.tag != CONV2D_NCHW or op.attr("groups", 1) != 1 or op.shape[2] != 1:
        return False
    kernel = tuple(r.extent for r in op.reduce_axes[1:])
    unpadded = not any(op.attr("padding", (0,)))  # type: ignore[arg-type]
    return kernel == (1, 1) and op.attr("stride") == (1, 1) and unpadded


def tile_pointwise(s: State, p: int, c: int) -> State:
    """Register tile of a 1x1 conv on flat planes (`is_flat_pointwise`), computed as the
    matrix product it is: `tile_rows()` filters x a vector of pixels; per input channel
    the tile loads one vector of pixels and broadcasts one weight per filter. The tiles
    run pixels fastest: a tile's weights stay in cache while the data streams past, and
    the output is written plane by plane (filters fastest, each tile writing across all
    F planes, ran ResNet-50 4 % slower, Zen 4, 1 thread)."""
    _, filters, _, pixels = s.stages[c].op.shape
    vec = vector_factor(pixels)
    rows = row_factor(filters, tile_rows())
    for k in (c, p):
        s = s.apply(Split(k, 3, (vec,)))  # [n, f, 1, px.o, px.i, red...]
        s = s.apply(Split(k, 1, (rows,)))  # [n, f.o, f.i, 1, px.o, px.i, red...]
        reduce = [6, 7, 8] if k == p else []
        s = s.apply(Reorder(k, (0, 1, 3, 4, *reduce, 2, 5)))
    s = s.apply(Fuse(c, (0, 1, 2, 3)))  # [tile, f.i, px.i]
    s = s.apply(Annotate(c, 0, Annotation.PARALLEL))
    s = s.apply(Annotate(c, 2, Annotation.VECTORIZE))
    s = s.apply(Annotate(p, 7, Annotation.UNROLL))
    s = s.apply(Annotate(p, 8, Annotation.VECTORIZE))
    return s.apply(ComputeAt(p, c, 0))


def conv_tile_shape(width: int, blocks: int, target: Target | None = None) -> tuple[int, int]:
    """(pixels, channel blocks) of a blocked conv's register tile within
    `conv_register_budget(target)` (default: this host), whole blocks. Few filters (one
    or two blocks): every block in the tile, so each broadcast input pixel feeds them
    all; else 14 pixels (3 with 16 vector registers), with 2 or 4 blocks on narrow
    images. The tile of convs writing NCHW data (`tile_blocked_conv`) on every target, and
    of those writing blocks with AVX-512 (`conv_tile_plan`)."""
    pixels, accumulators = conv_register_budget(target)
    if blocks <= 2:
        return row_factor(width, pixels // 2 + 1), blocks
    pixels = row_factor(width, pixels)
    return pixels, conv_block_multiple(pixels, blocks, accumulators)


def conv_tile_plan(width: int, blocks: int, target: Target | None = None) -> tuple[int, int, int]:
    """(pixels, channel blocks, lanes) of the register tile of a conv writing blocks
    (`tile_blocked_output`) on `target` (default: this host): `lanes` channels of each
    block are in the tile at a time. `conv_tile_shape`'s whole blocks where the target
    has the registers, else `few_register_tile`."""
    target = target or host_target()
    if few_registers(target):
        return few_register_tile(width, blocks, target)
    return (*conv_tile_shape(width, blocks, target), CONV_VECTOR_FLOATS)


def few_register_tile(width: int, blocks: int, target: Target) -> tuple[int, int, int]:
    """The register tile on a target of 16 vector registers narrower than a block (AVX2).

    Whole blocks (two ymm each) while the tile's accumulators, its weight vectors and a
    broadcast pixel fit the registers, the most accumulators first, then one block per
    pixel: 4-6 pixels of one block, 2 pixels of 2 blocks. At widths with no such
    divisor (7, 13: primes) the tile holds one native vector of the block for up to 13
    pixels, the block's two halves computed one after the other
    (`split_block_lanes`). Measured on AVX2 code (SKETCHTUNE_ISA=avx2 on Zen 4), GFLOP/s
    of convs writing blocks against `conv_tile_shape`'s tiles: 3x3 ones 7 wide 43 -> 86,
    13 wide 56 -> 100, 55 wide 58 -> 116, 56 wide 82 -> 106; 1x1 ones 13 wide 31 -> 88,
    112 wide 77 -> 108 (docs/benchmarks.md#codegen). Not for convs writing NCHW data,
    whose tiles store across channels' planes: there 4 pixels of a block ran at 0.4-0.75
    of 2 pixels of 2 blocks."""
    lanes = target.vector_lanes
    per_block = CONV_VECTOR_FLOATS // lanes  # registers per pixel and block
    registers = target.vector_registers
    mults = [blocks] if blocks <= 2 else [m for m in (1, 2) if blocks % m == 0]
    whole = [
        (px * m * per_block, -m, px, m)
        for m in mults
        for px in range(1, width + 1)
        if width % px == 0 and (px + 1) * m * per_block + 1 <= registers
    ]
    if not whole:  # not even one pixel of every block fits (two blocks with SSE)
        return (*conv_tile_shape(width, blocks, target), CONV_VECTOR_FLOATS)
    accumulators, _, px, m = max(whole)
    if accumulators >= FEW_REGISTER_MIN_ACCUMULATORS:
        return px, m, CONV_VECTOR_FLOATS
    narrow = row_factor(width, (registers - OPERAND_REGISTERS) // mults[0])
    if narrow * mults[0] > accumulators:
        return narrow, mults[0], lanes
    return px, m, CONV_VECTOR_FLOATS


def split_block_lanes(s: State, p: int, first_reduce: int, lanes: int) -> State:
    """Producer p's innermost loop (a block's channels) split by `lanes`, the outer part
    moved before the reduction at `first_reduce`: the register tile holds `lanes`
    channels per pixel and block. No change for a whole block."""
    block = s.stages[p].op.shape[-1]
    if lanes >= block or block % lanes:
        return s
    last = len(s.stages[p].iters) - 1
    s = s.apply(Split(p, last, (lanes,)))  # [..., fi.o, fi.i]
    order = list(range(last + 2))
    order.insert(first_reduce, order.pop(last))
    return s.apply(Reorder(p, tuple(order)))


def conv_block_multiple(width: int, blocks: int, accumulators: int = 16) -> int:
    """Channel blocks per tile: the most accumulators (width x blocks) up to 16, which
    hides FMA latency on narrow images without spilling registers."""
    fits = [m for m in (1, 2, 4) if blocks % m == 0 and width * m <= accumulators]
    return max(fits, default=1)
