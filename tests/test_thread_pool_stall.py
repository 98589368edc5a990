"""A 2-thread network beside a CPU-bound process does not stall (compiler/runtime/pool.c).

The pool's caller never waits for a worker that has not taken a chunk, so when another
process holds a core the network runs about as fast as one thread can, instead of
waiting scheduler time slices for a preempted worker (what a spinning OpenMP team
does: libgomp with OMP_WAIT_POLICY=active measured 4.6x slower beside one such
process, docs/threads.md). This is a timing test, the one the thread pool needs:
medians of many inferences, quiet and beside the process interleaved, and a bound
(2.5x) far from both the expected ratio (1-1.5x: one process more on two cores) and
a stall's (4x and more). On a noisy machine it measures again before failing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from compiler.runtime import num_threads
from models.compare import seeded_inputs
from models.network import compile_network
from models.onnx_import import import_model
from models.zoo.transformer import bert_encoder

BOUND = 2.5
ATTEMPTS = 3


def median_ms(call, n: int = 40) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def ratio_beside_a_busy_process(call) -> tuple[float, float, float]:
    """(quiet ms, beside ms, ratio) over 3 interleaved rounds: the quietest round's
    median (other work on a shared machine only slows a round down), and the median
    round's beside the busy process."""
    quiet, beside = [], []
    for _ in range(3):
        quiet.append(median_ms(call))
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)  # it is running
            beside.append(median_ms(call))
        finally:
            hog.kill()
            hog.wait()
    q, b = min(quiet), statistics.median(beside)
    return q, b, b / q


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_two_thread_network_beside_a_cpu_bound_process_does_not_stall():
    net = compile_network(import_model(bert_encoder()))
    net.run(seeded_inputs(net))
    seen = []
    with num_threads(2):
        for _ in range(3):
            net.run_bound()
        for _ in range(ATTEMPTS):
            quiet_ms, beside_ms, ratio = ratio_beside_a_busy_process(net.run_bound)
            seen.append(f"{quiet_ms:.2f} ms quiet, {beside_ms:.2f} ms beside ({ratio:.2f}x)")
            if ratio <= BOUND:
                return
    pytest.fail(f"2-thread latency beside a CPU-bound process over {BOUND}x: {seen}")
