"""The default schedule's register tile of a blocked conv fits this host's vector
registers: no accumulator spilled to the stack (14 pixels x 16 filters needed 28 ymm
registers on a 16-register AVX2 host and stored vectors to the stack 100 times).

Only the blocks that hold the FMAs count: the epilogue writes the finished tile to
its stack-allocated cache (a store to the stack that is no spill)."""

import re

import pytest

from compiler.codegen import assembly
from compiler.codegen.target import host_target
from compiler.lower.lower import lower
from compiler.measure.peak import vector_lanes
from compiler.ops.workloads import op_workload
from compiler.schedule.default import conv_tile_shape, default_schedule

STACK_STORE = re.compile(r"vmov[au]ps\s+%[xyz]mm\d+, -?\d*\(%rsp\)")
LABEL = re.compile(r"^\.?\w+:", re.MULTILINE)


def fma_blocks(asm: str) -> list[str]:
    """The basic blocks (text between two labels) that hold an FMA."""
    return [block for block in LABEL.split(asm) if "vfmadd" in block]


@pytest.mark.parametrize(
    ("width", "blocks"), [(56, 4), (28, 8), (14, 16), (7, 32), (56, 1), (28, 2)]
)
def test_blocked_conv_tile_fits_the_vector_registers(width, blocks):
    lanes = vector_lanes(host_target())
    registers = 32 if lanes == 16 else 16
    pixels, mult = conv_tile_shape(width, blocks)
    assert width % pixels == 0 and blocks % mult == 0
    # accumulators of 16 filters each, a broadcast input pixel and a weight vector
    assert pixels * mult * (16 // lanes) + 2 <= registers


@pytest.mark.parametrize("shape", ["1,128,28,28,128,3,3,1,1", "1,512,7,7,512,3,3,1,1"])
def test_default_blocked_conv_keeps_its_accumulators_in_registers(shape):
    if vector_lanes(host_target()) < 8:
        pytest.skip("no 256-bit vectors on this CPU")
    asm = assembly(lower(default_schedule(op_workload("conv2d_nchwc", shape))))
    blocks = fma_blocks(asm)
    assert blocks
    assert not [m for block in blocks for m in STACK_STORE.findall(block)]
