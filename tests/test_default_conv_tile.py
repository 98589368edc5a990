"""The default schedule's register tile of a blocked conv fits this host's vector
registers: no accumulator spilled to the stack (14 pixels x 16 filters needed 28 ymm
registers on a 16-register AVX2 host and stored vectors to the stack 100 times).

Only the blocks that hold the FMAs count: the epilogue writes the finished tile to
its stack-allocated cache (a store to the stack that is no spill)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import llvmlite.binding as llvm
import pytest

from compiler.codegen import assembly
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.schedule.conv_tiles import (
    conv_register_budget,
    conv_tile_plan,
    conv_tile_shape,
    nchw_tile_plan,
)
from compiler.schedule.default import default_schedule
from compiler.schedule.tile_factors import (
    OPERAND_REGISTERS,
    VECTOR_LANES,
    narrow_row_tile,
    row_factor,
    tile_rows,
)
from compiler.target import Target, host_target

TRIPLE = "x86_64-unknown-linux-gnu"
AVX512 = Target("znver4", "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl", TRIPLE)
AVX2 = Target("znver3", "+avx,+avx2,+fma,-avx512f", TRIPLE)
SSE = Target("x86-64", "+sse,+sse2", TRIPLE)
WIDTHS_BLOCKS = [(56, 4), (28, 8), (14, 16), (7, 32), (56, 1), (28, 2)]

STACK_STORE = re.compile(r"vmov[au]ps\s+%[xyz]mm\d+, -?\d*\(%rsp\)")
STACK_LOAD = re.compile(r"-?\d*\(%rsp\), %[xyz]mm\d+")
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


# (width, blocks) -> (pixels, blocks, lanes) of a conv writing blocks, AVX2
AVX2_PLANS = {
    (56, 4): (4, 1, 16),  # 8 ymm accumulators; 2 pixels of 2 blocks before
    (14, 16): (5, 1, 16),  # 5 + 5 + 4 pixels: 10 accumulators where 2 x 2 blocks had 8
    (55, 4): (5, 1, 16),
    (27, 8): (4, 1, 16),  # 6 tiles of 4 and one of 3, where 3 pixels had 6 accumulators
    (12, 4): (6, 1, 16),  # 12 accumulators, 2 weight registers, 1 broadcast: 15
    (112, 1): (4, 1, 16),
    (28, 2): (2, 2, 16),  # one or two blocks: all in the tile on a tie (a stem)
    (7, 32): (4, 1, 16),  # a prime width: 4 + 3 pixels of the block
    (13, 16): (5, 1, 16),  # 5 + 5 + 3; 13 pixels of one ymm, the halves in turn, before
    (1, 64): (1, 2, 16),  # one pixel: two blocks feed 4 accumulators
}


@pytest.mark.parametrize(("width_blocks", "plan"), AVX2_PLANS.items(), ids=str)
def test_avx2_tiles_of_convs_writing_blocks(width_blocks, plan):
    assert conv_tile_plan(*width_blocks, AVX2) == plan
    pixels, mult, lanes = plan
    accumulators = pixels * mult * lanes // AVX2.vector_lanes
    weights = mult * lanes // AVX2.vector_lanes
    assert accumulators + weights + 1 <= AVX2.vector_registers


@pytest.mark.parametrize(("width", "blocks"), WIDTHS_BLOCKS + [(7, 2), (13, 1), (1, 64)])
def test_sse_tiles_of_convs_writing_blocks_exist(width, blocks):
    pixels, mult, lanes = conv_tile_plan(width, blocks, SSE)
    assert pixels <= width and blocks % mult == 0 and lanes in (4, 16)


def test_avx512_tiles_of_convs_writing_blocks_are_whole_blocks():
    for width, blocks in WIDTHS_BLOCKS:
        assert conv_tile_plan(width, blocks, AVX512) == (
            *conv_tile_shape(width, blocks, AVX512),
            16,
        )


AVX2_NO_SPILL = """
    import re, sys
    sys.path.insert(0, "tests")
    from test_default_conv_tile import STACK_LOAD, STACK_STORE, fma_blocks
    from compiler.codegen import assembly
    from compiler.lower.lower import lower
    from compiler.ops.workloads import op_workload
    from compiler.schedule.default import default_schedule
    from compiler.target import host_target
    assert host_target().isa == "avx2"
    for shape in ("1,64,56,56,64,3,3,1,1", "1,512,7,7,512,3,3,1,1", "1,64,13,13,256,3,3,1,1",
                  "1,96,55,55,16,1,1,1,0", "1,32,12,12,64,3,3,1,1"):
        blocks = fma_blocks(assembly(lower(default_schedule(op_workload("conv2d_blocked", shape)))))
        # a spill stores to the stack and loads back in the same block; the tile of a
        # block's halves is written to its stack buffer after a half's reduction and read
        # before the next (one block of stores, another of loads)
        spills = sum(1 for b in blocks if STACK_STORE.search(b) and STACK_LOAD.search(b))
        print(shape, len(blocks), spills)
"""


def run_as_avx2(script: str, cache: Path) -> str:
    """`script`'s output, run in a process whose host target is AVX2 (SKETCHTUNE_ISA)."""
    if "+avx2" not in llvm.get_host_cpu_features().flatten().split(","):
        pytest.skip("this CPU has no AVX2")
    env = {**os.environ, "SKETCHTUNE_ISA": "avx2", "SKETCHTUNE_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
        cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_avx2_tiles_keep_their_accumulators_in_registers(tmp_path):
    rows = [line.split() for line in run_as_avx2(AVX2_NO_SPILL, tmp_path).splitlines()]
    assert len(rows) == 5
    for shape, n_blocks, spills in rows:
        assert int(n_blocks) > 0 and int(spills) == 0, shape


@pytest.mark.parametrize(
    ("rows", "columns", "expected"),
    [
        (14, 1536, (8, 7)),  # 2 rows of two ymm: 4 accumulators; 7 rows of one instead
        (7, 768, (8, 7)),
        (128, 768, (16, 4)),  # 4 rows of two ymm: 8 accumulators, as they were
        (1, 768, (16, 1)),  # one row: the row-vector tile's case
        (14, 12, (16, 2)),  # columns not a multiple of a ymm: unchanged
    ],
)
def test_avx2_matmul_tiles_of_few_rows_take_narrow_vectors(rows, columns, expected):
    tile = row_factor(rows, tile_rows(AVX2))
    assert narrow_row_tile(rows, columns, 16, tile, AVX2) == expected


def test_avx2_tiles_of_convs_writing_nchw_at_prime_widths_take_the_row():
    # 7 pixels of 8 channels (one ymm), the block's halves in turn; 1 pixel of 4 blocks
    # before, loading 8 weight vectors per broadcast pixel
    assert nchw_tile_plan(7, 28, AVX2) == (7, 1, 8)
    assert nchw_tile_plan(13, 16, AVX2) == (13, 1, 8)
    for width, blocks in WIDTHS_BLOCKS:  # other widths and AVX-512: whole blocks
        assert nchw_tile_plan(width, blocks, AVX512) == (
            *conv_tile_shape(width, blocks, AVX512),
            16,
        )
        if width % 2 == 0 or width % 3 == 0:
            assert nchw_tile_plan(width, blocks, AVX2)[2] == 16


AVX2_CONVS = """
    import numpy as np
    from compiler.codegen import build
    from compiler.lower.lower import lower
    from compiler.ops.workloads import op_workload
    from compiler.runtime import empty, load
    from compiler.schedule.default import default_schedule
    from compiler.target import host_target
    from compiler.te.evaluate import evaluate
    assert host_target().isa == "avx2"
    for op, shape in (
        ("conv2d_nchwc", "1,40,7,7,48,1,1,1,0"),  # writes NCHW at a prime width
        ("conv2d_blocked", "1,64,13,13,256,3,3,1,1"),  # tiles of 5 + 5 + 3 pixels
        ("conv2d_blocked", "1,32,14,14,64,3,3,2,1"),  # stride 2 to 7 wide: 4 + 3
        ("conv2d_blocked", "1,48,14,14,80,1,1,1,0"),  # 5 + 5 + 4, an odd number of blocks
    ):
        dag = op_workload(op, shape)
        rng = np.random.default_rng(0)
        values = {t: rng.standard_normal(t.shape).astype(np.float32) for t in dag.placeholders}
        (out,) = dag.outputs
        (expected,) = evaluate([out], values)
        result = empty(out.shape)
        result[...] = np.nan
        load(build(lower(default_schedule(dag))))(*values.values(), result)
        print(op, shape, float(np.abs(result - expected).max()))
"""


def test_avx2_convs_at_prime_widths_match_the_reference(tmp_path):
    rows = [line.split() for line in run_as_avx2(AVX2_CONVS, tmp_path).splitlines()]
    assert len(rows) == 4
    for op, shape, error in rows:
        assert float(error) < 1e-3, (op, shape)  # nan (a pixel not written) fails too
