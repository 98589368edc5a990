"""A tiled, packed, register-blocked matmul written by hand in loop IR (the shape a
tuned schedule lowers to): correct against numpy, with its accumulators in registers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from compiler.codegen import assembly, build, llvm_ir
from compiler.runtime import empty, load, num_threads
from compiler.target import host_target, vector_lanes

_BENCH = Path(__file__).parent / "bench" / "bench_codegen_matmul_ir.py"
_spec = importlib.util.spec_from_file_location("bench_codegen_matmul_ir", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("nr", [16, 48])
@pytest.mark.parametrize("threads", [1, 2])
def test_tiled_matmul_256(nr, threads):
    m = n = k = 256 if nr == 16 else 240
    n = nr * (n // nr)
    func = bench.matmul_ir(m, n, k, mr=8, nr=nr)
    kernel = load(build(func))
    rng = np.random.default_rng(3)
    a = empty((m, k))
    a[...] = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = empty((m, n))
    with num_threads(threads):
        kernel(a, bench.pack_b(b, nr), c)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_register_tile_stays_in_registers():
    """A register tile of 3 vectors per row (8 rows of zmm with AVX-512, 24
    accumulators; 4 rows of ymm with AVX2, 12 of 16 registers): the scratch array is
    promoted to registers (no alloca left for it) and the k loop has one vector FMA
    per accumulator."""
    lanes = vector_lanes(host_target())
    if lanes < 8:
        pytest.skip("no 256-bit vectors on this CPU")
    mr, nr, reg = (8, 48, "zmm") if lanes == 16 else (4, 24, "ymm")
    func = bench.matmul_ir(64, 96, 64, mr=mr, nr=nr)
    assert f"alloca [{mr * nr} x float]" in llvm_ir(func)
    assert f"alloca [{mr * nr}" not in llvm_ir(func, optimized=True)
    asm = assembly(func)
    assert asm.count("vfmadd231ps") >= mr * 3 and reg in asm
