"""The machine peak: the FMA kernel computes what its IR says, the peak is measured once
and cached per CPU and thread count, the roofline bound is min(peak, intensity x BW)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compiler.measure import peak as peak_mod
from compiler.measure.peak import (
    ACCUMULATORS,
    UNROLL,
    Peak,
    cache_path,
    machine_key,
    machine_peak,
)
from compiler.target import Target, host_caches, host_target, vector_lanes


def test_the_fma_kernel_computes_its_recurrence_and_counts_its_flops():
    lanes = vector_lanes(host_target())
    kernel = peak_mod._FmaKernel(lanes)
    out = np.zeros(lanes, np.float32)
    iters = 3
    kernel.call(iters, out.ctypes.data)
    acc = np.float32(0.0)
    m, a = np.float32(0.99999994), np.float32(1e-6)
    for _ in range(iters * UNROLL):
        acc = np.float32(acc * m + a)  # fma rounds once; at these magnitudes the same
    assert out == pytest.approx(np.full(lanes, ACCUMULATORS * acc), rel=1e-5)
    assert kernel.flops(iters) == 2 * lanes * ACCUMULATORS * UNROLL * iters


def test_vector_lanes_follow_the_features():
    def target(features: str) -> Target:
        return Target("cpu", features, "x86_64-unknown-linux-gnu")

    assert vector_lanes(target("+avx512f,+avx2,+avx")) == 16
    assert vector_lanes(target("-avx512f,+avx2,+avx")) == 8
    assert vector_lanes(target("-avx512f,-avx")) == 4


def test_machine_peak_is_measured_once_and_cached_per_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHTUNE_CACHE", str(tmp_path))
    first = machine_peak(1)
    assert first.gflops > 1.0 and first.fma_gflops > 1.0
    assert first.gbytes_s > 0.1 and first.cache_gbytes_s > 0.1
    assert first.cache_bytes == host_caches().l2 > 0
    assert first.vector_lanes == vector_lanes(host_target())
    assert cache_path() == tmp_path / "machine.json"
    stored = json.loads(cache_path().read_text())
    assert machine_key(host_target(), 1) in stored

    def no_measuring(threads: int) -> Peak:
        raise AssertionError("measured again")

    monkeypatch.setattr(peak_mod, "measure_peak", no_measuring)
    assert machine_peak(1) == first  # from the cache
    monkeypatch.setattr(peak_mod, "measure_peak", lambda threads: Peak(1.0, 2.0, threads))
    assert machine_peak(2) == Peak(1.0, 2.0, 2)  # another key: measured
    assert set(json.loads(cache_path().read_text())) == {
        machine_key(host_target(), 1),
        machine_key(host_target(), 2),
    }


def test_an_unreadable_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHTUNE_CACHE", str(tmp_path))
    (tmp_path / "machine.json").write_text("{not json")
    monkeypatch.setattr(peak_mod, "measure_peak", lambda threads: Peak(3.0, 4.0, threads))
    assert machine_peak(1) == Peak(3.0, 4.0, 1)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        machine_peak(0)


def test_the_roofline_bound_uses_cache_bandwidth_for_small_working_sets():
    peak = Peak(gflops=200.0, gbytes_s=10.0, threads=1, cache_gbytes_s=100.0, cache_bytes=1 << 20)
    assert peak.roofline_gflops(1.0) == 10.0  # memory-bound
    assert peak.roofline_gflops(100.0) == 200.0  # compute-bound
    assert peak.roofline_gflops(1.0, working_set_bytes=1 << 19) == 100.0  # fits in cache
    assert peak.roofline_gflops(1.0, working_set_bytes=1 << 22) == 10.0  # does not
