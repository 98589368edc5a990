"""Tile factors shared by the default schedule, the conv tiles and the templates: the
SIMD width and row count of a register tile, the divisors to split by, and which
extents are ragged (no divisor worth a vector)."""

from __future__ import annotations

# The longest SIMD loop of a default schedule, in floats, on every target: LLVM splits
# it into native vectors (one zmm with AVX-512, two ymm with AVX2, four xmm with SSE).
VECTOR_LANES = 16
TILE_ROWS = 8


def vector_factor(extent: int, lanes: int = VECTOR_LANES) -> int:
    """A divisor of `extent` to vectorize by: a multiple of 8 if one fits, else the largest."""
    divisors = [d for d in range(1, min(extent, lanes) + 1) if extent % d == 0]
    return max(divisors, key=lambda d: (d % 8 == 0, d))


def is_ragged(extent: int) -> bool:
    """An innermost extent with no divisor worth a vector (197 tokens, a prime): it is
    vectorized by VECTOR_LANES anyway, the split not dividing it; the lowering runs
    the last, partial vector apart (compiler/lower/passes.py partition_ragged_loops)."""
    return extent >= VECTOR_LANES and vector_factor(extent) < 8


def row_factor(extent: int, rows: int = TILE_ROWS) -> int:
    return max(d for d in range(1, min(extent, rows) + 1) if extent % d == 0)
