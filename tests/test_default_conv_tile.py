"""The default schedule's register tile of a blocked conv fits this host's vector
registers: no accumulator spilled to the stack (14 pixels x 16 filters needed 28 ymm
registers on a 16-register AVX2 host and stored vectors to the stack 100 times).

Only the blocks that hold the FMAs count: the epilogue writes the finished tile to
its stack-allocated cache (a store to the stack that is no spill)."""

import re

import pytest

from compiler.codegen import assembly
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.schedule.conv_tiles import conv_register_budget, conv_tile_shape
from compiler.schedule.default import default_schedule
from compiler.schedule.tile_factors import OPERAND_REGISTERS, VECTOR_LANES, tile_rows
from compiler.target import Target, host_target

TRIPLE = "x86_64-unknown-linux-gnu"
AVX512 = Target("znver4", "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl", TRIPLE)
AVX2 = Target("znver3", "+avx,+avx2,+fma,-avx512f", TRIPLE)
SSE = Target("x86-64", "+sse,+sse2", TRIPLE)
WIDTHS_BLOCKS = [(56, 4), (28, 8), (14, 16), (7, 32), (56, 1), (28, 2)]

STACK_STORE = re.compile(r"vmov[au]ps\s+%[xyz]mm\d+, -?\d*\(%rsp\)")
LABEL = re.compile(r"^\.?\w+:", re.MULTILINE)


def fma_blocks(asm: str) -> list[str]:
    """The basic blocks (text between two labels) that hold an FMA."""
    return [block for block in LABEL.split(asm) if "vfmadd" in block]


# Not SSE: a tile of every block of a conv with two blocks (28, 2) takes all 16 xmm
# registers there (conv_tile_shape does not check few-filter tiles against the budget).
@pytest.mark.parametrize("target", [None, AVX512, AVX2], ids=["host", "avx512", "avx2"])
@pytest.mark.parametrize(("width", "blocks"), WIDTHS_BLOCKS)
def test_blocked_conv_tile_fits_the_vector_registers(width, blocks, target):
    t = target or host_target()
    pixels, mult = conv_tile_shape(width, blocks, target)
    assert width % pixels == 0 and blocks % mult == 0
    # accumulators of 16 filters each, a broadcast input pixel and a weight vector
    assert pixels * mult * (16 // t.vector_lanes) + 2 <= t.vector_registers


def test_the_register_budget_follows_the_target():
    assert conv_register_budget(AVX512) == (14, 16)  # 16 of 32 zmm registers
    assert conv_register_budget(AVX2) == (3, 6)  # 6 x 16 floats = 12 of 16 ymm registers
    assert conv_register_budget(SSE) == (3, 3)  # 3 x 16 floats = 12 of 16 xmm registers
    assert conv_register_budget() == conv_register_budget(host_target())


@pytest.mark.parametrize(
    ("target", "tiles"),
    [
        # (pixels, channel blocks) for WIDTHS_BLOCKS, as chosen before the budget was
        # derived from the target's registers and lanes
        (AVX512, [(14, 1), (14, 1), (14, 1), (7, 2), (8, 1), (7, 2)]),
        (AVX2, [(2, 2), (2, 2), (2, 2), (1, 4), (2, 1), (2, 2)]),
    ],
    ids=["avx512", "avx2"],
)
def test_the_chosen_tiles_are_unchanged(target, tiles):
    assert [conv_tile_shape(w, b, target) for w, b in WIDTHS_BLOCKS] == tiles


@pytest.mark.parametrize(
    ("op", "shape"),
    [
        ("conv2d_nchwc", "1,128,28,28,128,3,3,1,1"),
        ("conv2d_nchwc", "1,512,7,7,512,3,3,1,1"),
        ("conv2d_blocked", "1,128,28,28,128,3,3,1,1"),
        ("conv2d_blocked", "1,64,111,111,64,3,3,1,1"),  # a tile of a few rows
        ("depthwise_conv2d_blocked", "1,96,56,56,3,3,1,1"),
    ],
)
def test_default_blocked_conv_keeps_its_accumulators_in_registers(op, shape):
    if host_target().vector_lanes < 8:
        pytest.skip("no 256-bit vectors on this CPU")
    asm = assembly(lower(default_schedule(op_workload(op, shape))))
    blocks = fma_blocks(asm)
    assert blocks
    assert not [m for block in blocks for m in STACK_STORE.findall(block)]


def test_matmul_tile_rows_leave_registers_for_the_operands():
    assert tile_rows(AVX512) == 8  # 8 zmm accumulators of 32
    assert tile_rows(AVX2) == 6  # 12 ymm of 16: 8 rows of two ymm would take all 16
    assert tile_rows(SSE) == 3  # 12 xmm of 16
    for target in (AVX512, AVX2, SSE):
        per_row = VECTOR_LANES // target.vector_lanes
        assert tile_rows(target) * per_row + OPERAND_REGISTERS <= target.vector_registers
