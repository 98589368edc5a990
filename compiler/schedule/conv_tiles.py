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


# The step cost of a conv's register tile on a few-register target (few_register_tile):
# cycles per reduction step, FMA_PIPES FMAs and LOADS_PER_CYCLE loads issued a cycle, and
# no fewer than FMA_LATENCY, an accumulator's FMA waiting for its last one.
FMA_PIPES = 2
LOADS_PER_CYCLE = 2
FMA_LATENCY = 4


def _step_cycles(accumulators: int, loads: int) -> float:
    return max(accumulators / FMA_PIPES, loads / LOADS_PER_CYCLE, FMA_LATENCY)


def few_register_tile(width: int, blocks: int, target: Target) -> tuple[int, int, int]:
    """The register tile on a target of 16 vector registers narrower than a block (AVX2):
    the plan of the fewest estimated cycles per output row and block (`_step_cycles`).

    Candidates: `px` pixels of 1 or 2 whole blocks (two ymm each) while their
    accumulators, weight vectors and a broadcast pixel fit the registers, the last tile
    of the row partial when px does not divide it (13 = 5 + 5 + 3; the lowering runs
    whole tiles without guards); or a divisor of the width in pixels of one native
    vector of the blocks, the block's halves computed one after the other
    (`split_block_lanes`). On a tie: every block of a conv with one or two (a stem's:
    ShuffleNetV2's 67 -> 105 GFLOP/s with 2 pixels of 2 blocks against 4 of one), else
    one; then whole blocks, the fewest pixels computed past the row's end, the fewest
    tiles.

    Measured on AVX2 code (SKETCHTUNE_ISA=avx2 on Zen 4) against the plan before (the
    most accumulators of a dividing width, else a row of one ymm): SqueezeNet's 3x3 conv
    on 13x13 683 -> 562 us (13 pixels of one ymm -> 5 of the block), ResNet-50's on 14x14
    2839 -> 2146 us (2 pixels of 2 blocks -> 5 of one); the convs whose plan changed,
    summed over a network, SqueezeNet 6.9 -> 6.1 ms, ResNet-50 22.2 -> 20.7, DenseNet-121
    6.1 -> 4.7 (docs/benchmarks.md#avx2-code).
    Not for convs writing NCHW data, whose tiles store across channels' planes
    (nchw_tile_plan)."""
    lanes = target.vector_lanes
    per_block = CONV_VECTOR_FLOATS // lanes  # registers per pixel and block
    registers = target.vector_registers
    plans = []
    for m in (m for m in (1, 2) if blocks % m == 0):
        other = m != (blocks if blocks <= 2 else 1)  # the tie-break's second choice
        weights = m * per_block
        for px in range(1, width + 1):
            if (px + 1) * weights + 1 > registers:
                break
            tiles = -(-width // px)
            last = width - (tiles - 1) * px
            cycles = (tiles - 1) * _step_cycles(px * weights, px + weights)
            cycles += _step_cycles(last * weights, last + weights)
            plans.append(
                (cycles / m, other, 0, tiles * px - width, tiles, (px, m, CONV_VECTOR_FLOATS))
            )
        for q in range(1, width + 1):
            if width % q or q * m + m + 1 > registers:
                continue
            cycles = width // q * per_block * _step_cycles(q * m, q + m)
            plans.append((cycles / m, other, 1, 0, width // q, (q, m, lanes)))
    if not plans:  # not even one pixel of one block fits
        return (*conv_tile_shape(width, blocks, target), CONV_VECTOR_FLOATS)
    return min(plans)[-1]


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
