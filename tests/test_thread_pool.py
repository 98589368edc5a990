"""The thread pool of generated parallel loops (compiler/runtime/pool.c, docs/threads.md).

Its mechanics through ctypes bodies (every iteration once, in contiguous chunks; the
caller takes back chunks no worker started; nested and concurrent loops run inline;
the thread count is the calling thread's), the code that calls it (parallel kernels
and networks give the serial bits at every thread count), and the build: cached
privately, rebuilt rather than trusting a file others could write, serial without a
C compiler, fine after fork.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import empty, get_num_threads, load, num_threads, set_num_threads
from compiler.runtime.pool import BODY_FN, POOL_C, cache_key, pool
from compiler.schedule.default import default_schedule
from compiler.te.dag import ComputeDAG
from models.compare import seeded_inputs
from models.errors import ModelError
from models.network import compile_network
from models.onnx_import import import_model
from models.zoo.cnn import mobilenet_v2
from models.zoo.transformer import bert_encoder

ROOT = Path(__file__).resolve().parents[1]


def run_ranges(extent: int, threads: int) -> list[tuple[int, int, int]]:
    """(begin, end, thread id) of each chunk a ctypes body ran."""
    seen: list[tuple[int, int, int]] = []

    def body(_ctx: object, begin: int, end: int) -> None:
        seen.append((begin, end, threading.get_native_id()))

    with num_threads(threads):
        pool().parallel_for(BODY_FN(body), extent)
    return seen


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("extent", [0, 1, 2, 3, 7, 64, 1000])
def test_every_iteration_runs_once_in_contiguous_chunks(extent, threads):
    ranges = sorted((b, e) for b, e, _ in run_ranges(extent, threads))
    covered = [i for b, e in ranges for i in range(b, e)]
    assert covered == list(range(extent))
    assert all(b < e for b, e in ranges)
    if threads == 1 or extent <= 1:
        assert len(ranges) == min(extent, 1)  # one call of the body, on the caller
    else:
        assert 1 <= len(ranges) <= extent


@pytest.mark.parametrize("chunking", [4, 1, -1, -2])
def test_chunking_policies_cover_the_loop(chunking):
    p = pool()
    old = p.stats().chunking
    p.configure(chunking=chunking)
    try:
        for extent in (1, 2, 3, 7, 1000, 3 * (1 << 30) + 5):  # the last: cut into units
            ranges = sorted((b, e) for b, e, _ in run_ranges(extent, 2))
            assert ranges[0][0] == 0 and ranges[-1][1] == extent
            assert all(e1 == b2 for (_, e1), (b2, _) in pairwise(ranges))
            assert all(b < e for b, e in ranges)
    finally:
        p.configure(chunking=old)


def test_the_caller_runs_chunks_no_worker_started():
    """Workers held (as if preempted before taking a chunk): the loop still completes,
    every chunk on the calling thread, and no wait for them."""
    p = pool()
    run_ranges(64, 2)  # the worker exists
    before = p.stats()
    p.hold_workers(True)
    try:
        ranges = run_ranges(64, 2)
    finally:
        p.hold_workers(False)
    after = p.stats()
    assert sorted(i for b, e, _ in ranges for i in range(b, e)) == list(range(64))
    assert {tid for _, _, tid in ranges} == {threading.get_native_id()}
    assert after.worker_chunks == before.worker_chunks
    assert after.caller_chunks - before.caller_chunks == len(ranges) > 1


def test_workers_take_chunks():
    """With a body slow enough, a worker takes part (the pool is not serial)."""
    p = pool()
    before = p.stats()
    seen: set[int] = set()

    def body(_ctx: object, begin: int, end: int) -> None:
        seen.add(threading.get_native_id())
        # releases the GIL (a Python body holds it while running) and the core: a worker
        # that moved off the caller's core to a busy one still gets its turn meanwhile
        time.sleep(0.001)

    with num_threads(2):
        for _ in range(200):
            p.parallel_for(BODY_FN(body), 8)
            if len(seen) > 1:
                break
    assert len(seen) == 2
    after = p.stats()
    assert after.worker_chunks > before.worker_chunks
    assert after.workers >= 1


def test_nested_and_concurrent_loops_run_inline():
    p = pool()
    inner: list[tuple[int, int]] = []

    def inner_body(_ctx: object, begin: int, end: int) -> None:
        inner.append((begin, end))

    inner_fn = BODY_FN(inner_body)

    def outer_body(_ctx: object, begin: int, end: int) -> None:
        for _ in range(begin, end):
            p.parallel_for(inner_fn, 10)  # the pool is busy: runs on this thread

    with num_threads(2):
        p.parallel_for(BODY_FN(outer_body), 6)
    assert sorted(inner) == [(0, 10)] * 6


def test_thread_count_belongs_to_the_calling_thread():
    set_num_threads(3)
    try:
        got: list[int] = []
        t = threading.Thread(target=lambda: got.append(get_num_threads()))
        t.start()
        t.join()
        assert get_num_threads() == 3
        assert got[0] == pool_default()
        with num_threads(1):
            assert get_num_threads() == 1
        assert get_num_threads() == 3
    finally:
        set_num_threads(pool_default())


def pool_default() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))


def parallel_matmul(n: int = 96):
    a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    dag = ComputeDAG([ops.matmul(a, b)])
    func = lower(default_schedule(dag))
    return load(build(func)), n


def test_parallel_kernels_give_the_serial_bits_at_every_thread_count():
    """Work split between threads changes no result: each iteration runs the same code."""
    kernel, n = parallel_matmul()
    rng = np.random.default_rng(0)
    a, b = empty((n, n)), empty((n, n))
    a[...], b[...] = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    outs = {}
    for threads in (1, 2, 3, 4):
        c = empty((n, n))
        c[...] = np.nan
        with num_threads(threads):
            for _ in range(3):
                kernel(a, b, c)
        outs[threads] = c.copy()
    for threads in (2, 3, 4):
        np.testing.assert_array_equal(outs[threads], outs[1])
    np.testing.assert_allclose(outs[1], a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "make", [lambda: mobilenet_v2(resolution=64, classes=100), bert_encoder], ids=["mbv2", "bert"]
)
def test_networks_give_the_same_bits_on_one_and_two_threads(make):
    net = compile_network(import_model(make()))
    inputs = seeded_inputs(net, seed=3)
    with num_threads(1):
        serial = net.run(inputs)
    with num_threads(2):
        for _ in range(3):
            parallel = net.run(inputs)
            for name in serial:
                np.testing.assert_array_equal(parallel[name], serial[name])


def test_a_network_runs_on_its_own_thread_count_and_restores_the_callers():
    net = compile_network(import_model(bert_encoder()), threads=2)
    inputs = seeded_inputs(net, seed=3)
    p = pool()
    with num_threads(1):
        before = p.stats()
        parallel = net.run(inputs)
        after = p.stats()
        assert get_num_threads() == 1  # the caller's setting is back
    assert after.parallel_loops > before.parallel_loops  # its loops ran on 2 threads
    net.threads = None  # the calling thread's setting again: 1, every loop inline
    with num_threads(1):
        before = p.stats()
        serial = net.run(inputs)
        assert p.stats().parallel_loops == before.parallel_loops
    for name in serial:
        np.testing.assert_array_equal(parallel[name], serial[name])
    with pytest.raises(ModelError, match="threads"):
        compile_network(import_model(bert_encoder()), threads=0)


def test_concurrent_callers_get_correct_results():
    """Two Python threads run parallel kernels at once: one gets the pool, the other
    runs inline; both correct."""
    kernel, n = parallel_matmul(64)
    rng = np.random.default_rng(1)
    a, b = empty((n, n)), empty((n, n))
    a[...], b[...] = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    with num_threads(1):
        want = empty((n, n))
        kernel(a, b, want)
    errors: list[str] = []

    def run() -> None:
        c = empty((n, n))
        set_num_threads(2)
        for _ in range(200):
            c[...] = np.nan
            kernel(a, b, c)
            if not np.array_equal(c, want):
                errors.append("mismatch")
                return

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


CHILD_KERNEL = """
    import warnings
    import numpy as np
    from compiler import ops, te
    from compiler.codegen import build
    from compiler.lower.lower import lower
    from compiler.runtime import empty, load, num_threads
    from compiler.runtime.pool import pool
    from compiler.schedule.default import default_schedule
    from compiler.te.dag import ComputeDAG

    def check():
        n = 64
        a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
        kernel = load(build(lower(default_schedule(ComputeDAG([ops.matmul(a, b)])))))
        x, y, z = empty((n, n)), empty((n, n)), empty((n, n))
        x[...] = np.arange(n * n).reshape(n, n) % 7
        y[...] = np.arange(n * n).reshape(n, n) % 5
        with num_threads(2):
            kernel(x, y, z)
        assert np.array_equal(z, x @ y)
"""


def with_kernel(code: str) -> str:
    """A child script: CHILD_KERNEL's imports and check(), then `code`."""
    return CHILD_KERNEL + code


def test_without_a_c_compiler_loops_run_serially(tmp_path):
    code = with_kernel("""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check()
    assert not pool().native
    assert any("one thread" in str(w.message) for w in caught), caught
    print("ok")
    """)
    env = {"CC": "no-such-cc", "SKETCHTUNE_CACHE": str(tmp_path / "cache")}
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_library_is_cached_privately_and_a_writable_file_is_not_loaded(tmp_path):
    cache = tmp_path / "cache"
    code = with_kernel("""
    check()
    assert pool().native
    print("ok")
    """)
    env = {"SKETCHTUNE_CACHE": str(cache)}
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr
    name = f"pool-{cache_key(POOL_C.read_bytes(), os.environ.get('CC', 'gcc'))}.so"
    lib = cache / "runtime" / name
    assert lib.is_file() and (lib.stat().st_mode & 0o777) == 0o600
    lib.write_bytes(b"not a library")  # as if another user had written it
    lib.chmod(0o666)
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr  # ignored, rebuilt
    assert (lib.stat().st_mode & 0o777) == 0o600 and lib.read_bytes()[:4] == b"\x7fELF"


def test_loops_run_in_a_forked_child():
    code = with_kernel("""
    import os
    check()   # the parent's workers exist
    pid = os.fork()
    if pid == 0:
        try:
            check()
            stats = pool().stats()
            os._exit(0 if stats.workers >= 1 else 3)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_omp_num_threads_sets_the_default():
    done = run_python(
        "from compiler.runtime import get_num_threads; print(get_num_threads())",
        {"OMP_NUM_THREADS": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"


def test_c_source_has_no_warnings(tmp_path):
    """The pool compiles cleanly (-Wall -Wextra) as C11."""
    cc = os.environ.get("CC", "gcc")
    done = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-pthread",
         "-o", str(tmp_path / "pool.so"), str(POOL_C)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_runner_measures_on_the_thread_count_it_was_given():
    """`tune --threads N`: the runner process's init sets the pool's count, and its
    workers start on the device's cores."""
    code = with_kernel("""
    import os
    from compiler.measure.evaluator import init_runner
    from compiler.runtime import get_num_threads
    cores = tuple(sorted(os.sched_getaffinity(0)))[:2]
    init_runner(cores, 2)
    assert get_num_threads() == 2
    n = 64
    a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    kernel = load(build(lower(default_schedule(ComputeDAG([ops.matmul(a, b)])))))
    x, y, z = empty((n, n)), empty((n, n)), empty((n, n))
    x[...], y[...] = 1.0, 2.0
    kernel(x, y, z)
    stats = pool().stats()
    assert stats.parallel_loops >= 1 and stats.workers == 1, stats
    init_runner(cores, 1)
    kernel(x, y, z)
    assert pool().stats().parallel_loops == stats.parallel_loops  # one thread: inline
    print("ok")
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_network_runs_its_calls_from_c_with_the_same_bits():
    """The executor makes every kernel call from one C loop (st_run_calls); calling the
    same bound kernels one by one from Python gives the same bits."""
    net = compile_network(import_model(bert_encoder()))
    assert net.sequence is not None
    inputs = seeded_inputs(net, seed=5)
    from_c = net.run(inputs)
    net.sequence = None
    from_python = net.run(inputs)
    for name in from_c:
        np.testing.assert_array_equal(from_c[name], from_python[name])


def test_a_call_list_runs_kernels_in_order():
    x = te.placeholder((64,), name="x")
    add_one = load(build(lower(default_schedule(ComputeDAG([ops.add(x, 1.0)])))))
    double = load(build(lower(default_schedule(ComputeDAG([ops.multiply(x, 2.0)])))))
    a, b, c = (empty(64) for _ in range(3))
    a[...] = np.arange(64)
    ptr = [arr.ctypes.data for arr in (a, b, c)]
    run = pool().call_list(
        [(add_one.address, [ptr[0], ptr[1]]), (double.address, [ptr[1], ptr[2]])]
    )
    assert run is not None
    run()
    np.testing.assert_array_equal(c, (np.arange(64) + 1) * 2)
    assert pool().call_list([(add_one.address, [ptr[0]] * 17)]) is None  # too many arrays
