"""Tile factors shared by the default schedule, the conv tiles and the templates: the
SIMD width and row count of a register tile, the divisors to split by, and which
extents are ragged (no divisor worth a vector)."""

from __future__ import annotations

from compiler.target import Target, host_target

# The longest SIMD loop of a default schedule, in floats, on every target: LLVM splits
# it into native vectors (one zmm with AVX-512, two ymm with AVX2, four xmm with SSE).
VECTOR_LANES = 16
# Rows of a matmul-like register tile of VECTOR_LANES columns, at most (tile_rows).
TILE_ROWS = 8
# Vector registers a register tile leaves for its operands: a broadcast element of the
# left operand and the right operand's vectors of one row.
OPERAND_REGISTERS = 3


def tile_rows(target: Target | None = None, vec: int = VECTOR_LANES) -> int:
    """Rows of a register tile of `vec` columns on `target` (default: this host):
    TILE_ROWS when their accumulators leave OPERAND_REGISTERS of the vector registers,
    else as many as do (16 columns: 8 with AVX-512's 32 registers, one zmm per row; 6
    with AVX2's 16, two ymm per row; 3 with SSE. 7 columns fill one ymm: 8 rows with
    AVX2)."""
    target = target or host_target()
    per_row = max(1, -(-vec // target.vector_lanes))
    return max(1, min(TILE_ROWS, (target.vector_registers - OPERAND_REGISTERS) // per_row))


def vector_factor(extent: int, lanes: int = VECTOR_LANES) -> int:
    """A divisor of `extent` to vectorize by: a multiple of 8 if one fits, else the largest."""
    divisors = [d for d in range(1, min(extent, lanes) + 1) if extent % d == 0]
    return max(divisors, key=lambda d: (d % 8 == 0, d))


def is_ragged(extent: int) -> bool:
    """An innermost extent with no divisor worth a vector (197 tokens, a prime): it is
    vectorized by VECTOR_LANES anyway, the split not dividing it; the lowering runs
    the last, partial vector apart (compiler/lower/passes.py partition_ragged_loops)."""
    return extent >= VECTOR_LANES and vector_factor(extent) < 8


def row_factor(extent: int, rows: int | None = None) -> int:
    """The largest divisor of `extent` up to `rows` (default: `tile_rows()`)."""
    rows = tile_rows() if rows is None else rows
    return max(d for d in range(1, min(extent, rows) + 1) if extent % d == 0)


def few_registers(target: Target | None = None) -> bool:
    """A VECTOR_LANES-float vector takes several of the target's vector registers (AVX2:
    two ymm), and there are 16 of them."""
    target = target or host_target()
    return target.vector_lanes < VECTOR_LANES and target.vector_registers <= 16


# Accumulator registers a register tile on a few-register target should reach: two FMA
# pipes of 4 cycles' latency need 8 independent chains; 6 (3 pixels of a conv block)
# still ran at 0.8 of them.
FEW_REGISTER_MIN_ACCUMULATORS = 6


def narrow_row_tile(
    rows: int, columns: int, vec: int, tile: int, target: Target | None = None
) -> tuple[int, int]:
    """(vector, rows) of a matmul-like register tile on a few-register target: `tile`
    rows of `vec` columns unless their accumulators are too few (14 rows: 2 of two ymm
    each), then as many rows of one native vector as the registers hold (7 of one ymm).
    Measured on AVX2 code (SKETCHTUNE_ISA=avx2, Zen 4): ConvNeXt-Tiny's 14- and 7-row
    products: 1.2-1.45x (docs/benchmarks.md#codegen)."""
    target = target or host_target()
    lanes = target.vector_lanes
    if tile * max(1, vec // lanes) >= FEW_REGISTER_MIN_ACCUMULATORS or columns % lanes:
        return vec, tile
    narrow = row_factor(rows, target.vector_registers - OPERAND_REGISTERS)
    return (lanes, narrow) if narrow > tile * max(1, vec // lanes) else (vec, tile)
