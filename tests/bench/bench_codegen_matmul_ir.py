"""Hand-written loop-IR matmul through our codegen against numpy's sgemm, same thread count.

The program is what a good schedule lowers to: B packed into [N/48, K, 48]
panels, a parallel loop over panels, an 8x48 register tile (`acc`, UNROLLED
rows x VECTORIZED columns) accumulated over k. Rounds interleave ours and numpy
and the median per-round ratio is reported (this machine drifts between fast
and slow states). Also measured: compile times, and the per-call cost of an
empty kernel and of an empty parallel loop.

Run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so numpy picks its best kernel:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_codegen_matmul_ir.py
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from output import human_output, print_json
from timing import best_s, call_overhead_us

from compiler.codegen import build
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    Load,
    PrimFunc,
    Scope,
    Store,
    seq,
)
from compiler.runtime import empty, get_num_threads, load, num_threads
from compiler.te.expr import FloatImm, Var


def matmul_ir(m: int, n: int, k: int, *, mr: int = 8, nr: int = 48) -> PrimFunc:
    """C = A @ B with B packed as Bp[n/nr, k, nr]; an mr x nr accumulator tile per (jo, io)."""
    assert m % mr == 0 and n % nr == 0
    A, Bp, C = Buffer("A", (m, k)), Buffer("Bp", (n // nr, k, nr)), Buffer("C", (m, n))
    acc = Buffer("acc", (mr, nr), scope=Scope.LOCAL)
    jo, io, kk, i, j = (Var(v) for v in ("jo", "io", "k", "i", "j"))

    def tile(stmt: Store) -> For:
        return For(i, mr, ForKind.UNROLLED, For(j, nr, ForKind.VECTORIZED, stmt))

    a = Load(A, (io * mr + i) * k + kk)
    b = Load(Bp, (jo * k + kk) * nr + j)
    update = Store(acc, i * nr + j, Load(acc, i * nr + j) + a * b)
    out = Store(C, (io * mr + i) * n + jo * nr + j, Load(acc, i * nr + j))
    body = seq(
        tile(Store(acc, i * nr + j, FloatImm(0.0))),
        For(kk, k, ForKind.SERIAL, tile(update)),
        tile(out),
    )
    loops = For(
        jo, n // nr, ForKind.PARALLEL, For(io, m // mr, ForKind.SERIAL, Allocate(acc, body))
    )
    return PrimFunc(f"matmul_{m}x{n}x{k}", (A, Bp, C), loops)


def pack_b(b: np.ndarray, nr: int = 48) -> np.ndarray:
    k, n = b.shape
    out = empty((n // nr, k, nr), b.dtype)
    out[...] = b.reshape(k, n // nr, nr).transpose(1, 0, 2)
    return out


def three_deep_ir(n: int = 256) -> PrimFunc:
    """A typical small kernel: C[i, j] = sum_k A[i, k] * B[k, j], three plain loops."""
    A, B, C = Buffer("A", (n, n)), Buffer("B", (n, n)), Buffer("C", (n, n))
    i, j, kk = Var("i"), Var("j"), Var("k")
    acc = Load(C, i * n + j) + Load(A, i * n + kk) * Load(B, kk * n + j)
    body = For(
        i,
        n,
        ForKind.PARALLEL,
        For(kk, n, ForKind.SERIAL, For(j, n, ForKind.VECTORIZED, Store(C, i * n + j, acc))),
    )
    return PrimFunc("three_deep", (A, B, C), body)


def compile_s(func: PrimFunc, repeat: int = 3) -> float:
    return min(build(func).compile_s for _ in range(repeat))


def bench_matmul(size: int, rounds: int, threads: int) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    m = k = size
    n = 48 * (size // 48)
    func = matmul_ir(m, n, k)
    art = build(func)
    kernel = load(art)
    rng = np.random.default_rng(0)
    a = empty((m, k))
    a[...] = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    bp, c = pack_b(b), empty((m, n))
    flops = 2.0 * m * n * k
    ours, theirs, ratios = [], [], []
    with threadpool_limits(threads), num_threads(threads):
        kernel(a, bp, c)
        ref = a @ b
        rel_err = float(np.abs(c - ref).max() / np.abs(ref).max())
        for _ in range(rounds):
            t_ours = best_s(lambda: kernel(a, bp, c), 3)
            t_np = best_s(lambda: a @ b, 3)
            ours.append(flops / t_ours / 1e9)
            theirs.append(flops / t_np / 1e9)
            ratios.append(t_np / t_ours)
    return {
        "size": float(size),
        "threads": float(threads),
        "compile_matmul_s": compile_s(func),
        "max_rel_err": rel_err,
        "ours_gflops": statistics.median(ours),
        "numpy_gflops": statistics.median(theirs),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with human_output(args.json):
        figures = bench_matmul(args.size, args.rounds, args.threads)
        figures["compile_three_deep_s"] = compile_s(three_deep_ir())
        figures["empty_call_us"] = call_overhead_us(parallel=False)
        figures["empty_parallel_call_us"] = call_overhead_us(parallel=True)
        empty_us = figures["empty_call_us"]
        figures["parallel_overhead_us"] = figures["empty_parallel_call_us"] - empty_us
        figures["default_threads"] = float(get_num_threads())
        print(f"{'figure':<26}{'value':>12}")
        for key, value in figures.items():
            print(f"{key:<26}{value:>12.4g}")
    if args.json:
        print_json(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
