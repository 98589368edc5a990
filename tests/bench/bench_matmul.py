"""A hand-scheduled 1024x1024x1024 fp32 matmul from this compiler against numpy.

The schedule is written in the same step language the tuner searches, on
`ops.matmul_packed` (B repacked into panels of two vectors' width inside the kernel),
its register tile from the target description (`register_tile`: 8x32 with AVX-512,
4x16 with AVX2):
  B_packed   parallel over panels, vectorized copy
  C          [i.0 @ j.0 (parallel), i.1, i.2, j.1 (vector)]: row blocks of 256
             so a block of A stays in L2 while every panel of B passes by
  C.local    the register tile computed at i.1: [k, i (unrolled), j (vector)]
Timed against numpy's sgemm on the same thread count (threadpoolctl), rounds
interleaved, median of per-round ratios; also the compile time of the kernel
and the per-call overhead of the parallel runtime (compiler/runtime/pool.c) on 2
threads: `parallel_call_overhead_us`, an empty parallel loop minus an empty kernel,
and `parallel_split_overhead_us`, a parallel loop of about 20 us of work (tanh over
64 rows of 2048 floats) on 2 threads minus half its time on 1: what handing half of
a loop to the other thread costs (waking or reaching the worker, the imbalance at
the end).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tests/bench/bench_matmul.py [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from output import human_output, print_json
from threadpoolctl import threadpool_limits
from timing import call_overhead_us, interleaved, median_ratio

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.loop_ir import Buffer, For, ForKind, Load, PrimFunc, Store
from compiler.lower.lower import lower
from compiler.runtime import Kernel, empty, load, num_threads
from compiler.schedule.state import State
from compiler.schedule.steps import (
    Annotate,
    Annotation,
    CacheWrite,
    ComputeAt,
    Fuse,
    Reorder,
    Split,
)
from compiler.target import Target, host_target
from compiler.te.constructors import tanh
from compiler.te.dag import ComputeDAG
from compiler.te.expr import Var

PAR, VEC, UNROLL = Annotation.PARALLEL, Annotation.VECTORIZE, Annotation.UNROLL


def register_tile(target: Target | None = None) -> tuple[int, int]:
    """(rows, panel columns) of the register tile on `target` (default: this host): two
    native vectors per row, and the most rows, a power of two (they divide the matrix),
    whose accumulators leave registers for a row of the panel and a broadcast element of
    A: 8 x 32 with AVX-512 (16 of 32 zmm), 4 x 16 with AVX2 (8 of 16 ymm; 8 x 32 took
    32 ymm and ran at 0.50 of numpy's sgemm, 4 x 16 at 0.92-0.96, Zen 4 with
    SKETCHTUNE_ISA=avx2 against OpenBLAS's Haswell kernels)."""
    t = target or host_target()
    per_row = 2
    rows = 1
    while (2 * rows + 1) * per_row + 1 <= t.vector_registers:
        rows *= 2
    return rows, per_row * t.vector_lanes


def hand_schedule(
    size: int, rows: int | None = None, panel: int | None = None, block_rows: int = 256
) -> State:
    if rows is None or panel is None:
        rows, panel = register_tile()
    a = te.placeholder((size, size), name="A")
    b = te.placeholder((size, size), name="B")
    dag = ComputeDAG([ops.matmul_packed(a, b, panel=panel)])
    pack, local, out = 2, 3, 4  # stage indices once the write cache exists
    s = State.initial(dag).apply(CacheWrite(3))
    # C: [i.0, i.1, i.2, j] -> [i.0, i.1, i.2, j.0, j.1] -> [i.0, j.0, i.1, i.2, j.1]
    s = s.apply(Split(out, 0, (block_rows // rows, rows))).apply(Split(out, 3, (panel,)))
    s = s.apply(Reorder(out, (0, 3, 1, 2, 4))).apply(Fuse(out, (0, 1)))
    s = s.apply(Annotate(out, 0, PAR)).apply(Annotate(out, 3, VEC))
    # C.local: [i.0, i.1, j.0, j.1, k] -> [i.0, j.0, k, i.1, j.1]
    s = s.apply(Split(local, 0, (rows,))).apply(Split(local, 2, (panel,)))
    s = s.apply(Reorder(local, (0, 2, 4, 1, 3)))
    s = s.apply(Annotate(local, 3, UNROLL)).apply(Annotate(local, 4, VEC))
    s = s.apply(ComputeAt(local, out, 1))
    return s.apply(Annotate(pack, 0, PAR)).apply(Annotate(pack, 2, VEC))


def measure(kernel: Kernel, size: int, threads: int, rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    a, b, c = empty((size, size)), empty((size, size)), empty((size, size))
    a[...] = rng.random((size, size), dtype=np.float32)
    b[...] = rng.random((size, size), dtype=np.float32)
    flops = 2.0 * size**3
    with threadpool_limits(threads), num_threads(threads):
        kernel(a, b, c)
        ref = a @ b
        err = float(np.abs(c - ref).max() / np.abs(ref).max())
        ours_s, numpy_s = interleaved(kernel.bind(a, b, c), lambda: a @ b, rounds)
    return {
        "gflops": flops / statistics.median(ours_s) / 1e9,
        "numpy_gflops": flops / statistics.median(numpy_s) / 1e9,
        "ratio": median_ratio(ours_s, numpy_s),
        "max_rel_err": err,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with human_output(args.json):
        figures = run(args.size, args.rounds)
    if args.json:
        print_json(figures)
    return 0


def run(size: int, rounds: int) -> dict[str, float]:
    """Measure and print the table."""
    func = lower(hand_schedule(size))
    compile_ms = statistics.median(build(func).compile_s for _ in range(3)) * 1e3
    kernel = load(build(func))
    figures: dict[str, float] = {}
    for threads in (1, 2):
        got = measure(kernel, size, threads, rounds)
        figures.update({f"{key}_{threads}t": value for key, value in got.items()})
    figures["compile_ms"] = compile_ms
    with num_threads(2):
        figures["parallel_call_overhead_us"] = call_overhead_us(True) - call_overhead_us(False)
    figures.update(split_overhead_us())
    print(f"matmul {size}^3 fp32, hand schedule vs numpy (median of {rounds} rounds)")
    print(f"{'threads':>8}{'ours GFLOP/s':>14}{'numpy GFLOP/s':>15}{'ratio':>8}{'max rel err':>13}")
    for t in (1, 2):
        print(
            f"{t:>8}{figures[f'gflops_{t}t']:>14.1f}{figures[f'numpy_gflops_{t}t']:>15.1f}"
            f"{figures[f'ratio_{t}t']:>8.2f}{figures[f'max_rel_err_{t}t']:>13.1e}"
        )
    print(f"compile time per kernel: {compile_ms:.0f} ms")
    overhead = figures["parallel_call_overhead_us"]
    print(f"parallel runtime per-call overhead (2 threads): {overhead:.2f} us")
    print(
        f"a {figures['split_serial_us']:.1f} us parallel loop on 2 threads: "
        f"{figures['split_parallel_us']:.1f} us, "
        f"{figures['parallel_split_overhead_us']:.2f} us over half the serial time"
    )
    return figures


def split_overhead_us(
    rows: int = 64, cols: int = 2048, batches: int = 21, calls: int = 50
) -> dict[str, float]:
    """A parallel tanh loop timed on 1 and 2 threads, batches interleaved: the medians
    of per-call times and the 2-thread time minus half the 1-thread time."""
    x_buf, y_buf = Buffer("X", (rows, cols)), Buffer("Y", (rows, cols))
    i, j = Var("i"), Var("j")
    store = Store(y_buf, i * cols + j, tanh(Load(x_buf, i * cols + j)))
    body = For(i, rows, ForKind.PARALLEL, For(j, cols, ForKind.VECTORIZED, store))
    kernel = load(build(PrimFunc("split_tanh", (x_buf, y_buf), body)))
    x, y = empty((rows, cols)), empty((rows, cols))
    x[...] = np.random.default_rng(0).uniform(-2, 2, (rows, cols))
    call = kernel.bind(x, y)
    per_call: dict[int, list[float]] = {1: [], 2: []}
    for b in range(batches):
        for threads in (1, 2) if b % 2 else (2, 1):
            with num_threads(threads):
                for _ in range(10):
                    call()
                t = time.perf_counter()
                for _ in range(calls):
                    call()
                per_call[threads].append((time.perf_counter() - t) / calls * 1e6)
    serial, parallel = statistics.median(per_call[1]), statistics.median(per_call[2])
    return {
        "split_serial_us": serial,
        "split_parallel_us": parallel,
        "parallel_split_overhead_us": parallel - serial / 2,
    }


if __name__ == "__main__":
    sys.exit(main())
