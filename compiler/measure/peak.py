"""This machine's measured single-precision peak and memory bandwidth, per thread count.

The reports put every layer's GFLOP/s next to these two numbers (share of the
peak, roofline bound for the layer's arithmetic intensity), so they are measured
here, once per machine, not taken from a data sheet:

- **peak FLOP/s**: a register-bound FMA loop emitted with llvmlite for the host
  CPU (the widest vector type it has, `compiler.target.vector_lanes`: 16 floats
  with AVX-512, 8 with AVX, else 4),
  12 independent accumulators, 4x unrolled, no memory traffic in the loop. It runs
  on `threads` Python threads at once (ctypes releases the GIL); FLOPs =
  2 x lanes x FMAs. numpy's sgemm (1024^3) is timed too, as a cross-check stored
  beside it (`numpy_sgemm_gflops`; only on one thread, where its thread count is
  known); the peak is the larger of the two.
- **bandwidth**: the best of a few copies of a 128 MiB float32 array (numpy,
  split in `threads` chunks copied on as many threads); bytes = read + written.
  Also the **cache bandwidth**: repeated copies of a block that stays in the
  per-core L2 (half its size, from `compiler.target.host_caches`), per thread.
  A layer whose whole working set fits in `cache_bytes` is bounded by that one
  (a small layer's weights stay cached from one inference to the next).

Results are cached as JSON in `$SKETCHTUNE_CACHE/machine.json` (default
`~/.cache/sketchtune/machine.json`), keyed by CPU name, a hash of its feature
string and the thread count. Measuring takes a few seconds.

Example:
    >>> peak = machine_peak(threads=1)          # doctest: +SKIP
    >>> peak.gflops, peak.gbytes_s              # doctest: +SKIP
    (151.2, 11.8)
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np

from compiler.codegen.target import new_target_machine
from compiler.settings import settings
from compiler.target import Target, host_caches, host_target, vector_lanes

ACCUMULATORS = 12  # independent FMA chains: enough to hide FMA latency on 2 ports
UNROLL = 4  # FMAs per accumulator per loop iteration
TARGET_CALL_S = 0.05  # one timed call of the FMA loop lasts about this long
COPY_BYTES = 128 << 20  # larger than any last-level cache here
CACHE_VERSION = "v2"  # bump when Peak's fields change meaning


@dataclass(frozen=True)
class Peak:
    """Measured single-precision GFLOP/s and memory GB/s on `threads` threads."""

    gflops: float
    gbytes_s: float
    threads: int = 1
    fma_gflops: float = 0.0
    numpy_sgemm_gflops: float | None = None
    vector_lanes: int = 0
    cache_gbytes_s: float = 0.0
    cache_bytes: int = 0

    def bandwidth_gbytes_s(self, working_set_bytes: float | None = None) -> float:
        """Cache bandwidth for a working set that fits in the per-thread caches, else memory."""
        fits = (
            working_set_bytes is not None and working_set_bytes <= self.cache_bytes * self.threads
        )
        return self.cache_gbytes_s if fits and self.cache_gbytes_s > 0 else self.gbytes_s

    def roofline_gflops(
        self, intensity_flop_per_byte: float, working_set_bytes: float | None = None
    ) -> float:
        """The attainable GFLOP/s at this arithmetic intensity: min(peak, intensity x BW)."""
        bandwidth = self.bandwidth_gbytes_s(working_set_bytes)
        return min(self.gflops, intensity_flop_per_byte * bandwidth)


def cache_path() -> Path:
    """Where measured peaks are kept (`$SKETCHTUNE_CACHE` or ~/.cache/sketchtune)."""
    return settings().cache_dir / "machine.json"


def machine_key(target: Target, threads: int) -> str:
    """CPU name, feature-string hash, thread count: what a cached peak is valid for."""
    features = hashlib.sha256(target.features.encode()).hexdigest()[:12]
    return f"{CACHE_VERSION}/{target.cpu}/{features}/threads={threads}"


def machine_peak(threads: int = 1, *, refresh: bool = False) -> Peak:
    """The cached peak of this machine on `threads` threads, measured on first use."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    path, key = cache_path(), machine_key(host_target(), threads)
    cached = _read_cache(path)
    if key in cached and not refresh:
        try:
            return Peak(**cached[key])
        except TypeError:
            pass  # an older layout: measure again
    peak = measure_peak(threads)
    cached[key] = asdict(peak)
    _write_cache(path, cached)
    return peak


def measure_peak(threads: int = 1) -> Peak:
    """Measure (no cache): FMA-loop GFLOP/s, numpy sgemm on one thread, copy bandwidth."""
    lanes = vector_lanes(host_target())
    fma = fma_gflops(threads, lanes)
    sgemm = numpy_sgemm_gflops() if threads == 1 else None
    bandwidth = copy_gbytes_s(threads)
    l2 = host_caches().l2
    cached = cache_gbytes_s(threads, l2)
    return Peak(max(fma, sgemm or 0.0), bandwidth, threads, fma, sgemm, lanes, cached, l2)


def fma_loop_ir(lanes: int) -> str:
    """`void fma_loop(i64 iters, ptr out)`: ACCUMULATORS x UNROLL vector FMAs per iteration."""
    vec = f"<{lanes} x float>"
    ones = ", ".join(["float 0x3FEFFFFFE0000000"] * lanes)  # 0.99999994: no folding to a constant
    small = ", ".join(["float 0x3EB0C6F7A0000000"] * lanes)  # 1e-6
    lines = [
        f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})",
        "define void @fma_loop(i64 %iters, ptr %out) {",
        "entry:",
        "  br label %loop",
        "loop:",
        "  %i = phi i64 [0, %entry], [%i.next, %loop]",
    ]
    names = [f"%acc{a}" for a in range(ACCUMULATORS)]
    for a, name in enumerate(names):
        lines.append(f"  {name} = phi {vec} [zeroinitializer, %entry], [%acc{a}.u{UNROLL}, %loop]")
    for u in range(1, UNROLL + 1):
        for a in range(ACCUMULATORS):
            prev = f"%acc{a}" if u == 1 else f"%acc{a}.u{u - 1}"
            lines.append(
                f"  %acc{a}.u{u} = call {vec} @llvm.fma.v{lanes}f32({vec} {prev}, "
                f"{vec} <{ones}>, {vec} <{small}>)"
            )
    lines += [
        "  %i.next = add i64 %i, 1",
        "  %more = icmp ult i64 %i.next, %iters",
        "  br i1 %more, label %loop, label %done",
        "done:",
    ]
    total = f"%acc0.u{UNROLL}"
    for a in range(1, ACCUMULATORS):
        lines.append(f"  %sum{a} = fadd {vec} {total}, %acc{a}.u{UNROLL}")
        total = f"%sum{a}"
    lines += [f"  store {vec} {total}, ptr %out, align 4", "  ret void", "}"]
    return "\n".join(lines)


class _FmaKernel:
    """The FMA loop compiled by MCJIT for the host; keeps the engine alive."""

    def __init__(self, lanes: int) -> None:
        module = llvm.parse_assembly(fma_loop_ir(lanes))
        module.verify()
        self.engine = llvm.create_mcjit_compiler(module, new_target_machine(host_target()))
        self.engine.finalize_object()
        address = self.engine.get_function_address("fma_loop")
        self.call = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(address)
        self.lanes = lanes

    def flops(self, iters: int) -> int:
        return 2 * self.lanes * ACCUMULATORS * UNROLL * iters


def fma_gflops(threads: int, lanes: int, repeat: int = 5) -> float:
    """Best GFLOP/s of the FMA loop run on `threads` threads at once."""
    kernel = _FmaKernel(lanes)
    outs = [np.zeros(lanes, np.float32) for _ in range(threads)]
    iters = 1000
    while True:  # calibrate one call to about TARGET_CALL_S
        elapsed = _timed(lambda n=iters: kernel.call(n, outs[0].ctypes.data))
        if elapsed >= TARGET_CALL_S / 4 or iters > 1 << 34:
            break
        iters *= 4
    iters = max(1, int(iters * TARGET_CALL_S / max(elapsed, 1e-9)))
    calls = [lambda o=o: kernel.call(iters, o.ctypes.data) for o in outs]
    best = min(_parallel_s(calls) for _ in range(repeat))
    return kernel.flops(iters) * threads / best / 1e9


def numpy_sgemm_gflops(n: int = 1024, repeat: int = 5) -> float | None:
    """numpy's sgemm on one thread (None when its BLAS thread count cannot be set)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    with threadpool_limits(1, user_api="blas"):
        np.dot(a, b)
        best = min(_timed(lambda: np.dot(a, b)) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def copy_gbytes_s(threads: int, repeat: int = 5) -> float:
    """Best GB/s (read + written) copying COPY_BYTES with numpy on `threads` threads."""
    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if p.size]
    calls = [lambda lo=lo, hi=hi: np.copyto(dst[lo:hi], src[lo:hi]) for lo, hi in bounds]
    _parallel_s(calls)  # touch every page once
    best = min(_parallel_s(calls) for _ in range(repeat))
    return 2 * src.nbytes / best / 1e9


def cache_gbytes_s(threads: int, cache_bytes: int, repeat: int = 5) -> float:
    """Best GB/s (read + written) of copies whose source and target fit in half the L2."""
    floats = max(1024, cache_bytes // 4 // 4)  # src + dst = half the cache
    pairs = [(np.ones(floats, np.float32), np.empty(floats, np.float32)) for _ in range(threads)]
    copies = 200

    def loop(src: np.ndarray, dst: np.ndarray) -> None:
        for _ in range(copies):
            np.copyto(dst, src)

    calls = [lambda p=p: loop(*p) for p in pairs]
    _parallel_s(calls)
    best = min(_parallel_s(calls) for _ in range(repeat))
    return 2 * floats * 4 * copies * threads / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _parallel_s(calls: list) -> float:
    """Wall seconds to run every call, each on its own thread, started together."""
    if len(calls) == 1:
        return _timed(calls[0])
    barrier = threading.Barrier(len(calls) + 1)

    def work(fn) -> None:
        barrier.wait()
        fn()

    pool = [threading.Thread(target=work, args=(fn,)) for fn in calls]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return time.perf_counter() - start


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    """Write atomically (rename), so concurrent readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time
