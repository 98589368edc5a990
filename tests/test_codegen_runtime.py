"""Runtime: argument checks, alignment staging, artifacts across processes, thread count."""

import multiprocessing
import pickle

import numpy as np
import pytest

from compiler.codegen import Artifact, build
from compiler.lower.loop_ir import Buffer, For, ForKind, Load, PrimFunc, Store
from compiler.runtime import (
    KernelArgError,
    aligned,
    empty,
    get_num_threads,
    load,
    num_threads,
    set_num_threads,
)
from compiler.target import host_target
from compiler.te.expr import FloatImm, Var


def axpy_func() -> PrimFunc:
    """Y[i, j] = 2 * X[i, j] + Y[i, j], parallel over rows, SIMD over columns."""
    X, Y = Buffer("X", (8, 24)), Buffer("Y", (8, 24))
    i, j = Var("i"), Var("j")
    idx = i * 24 + j
    value = Load(X, idx) * FloatImm(2.0) + Load(Y, idx)
    return PrimFunc(
        "axpy",
        (X, Y),
        For(i, 8, ForKind.PARALLEL, For(j, 24, ForKind.VECTORIZED, Store(Y, idx, value))),
    )


@pytest.fixture(scope="module")
def axpy():
    return load(build(axpy_func()))


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.random((8, 24), dtype=np.float32), rng.random((8, 24), dtype=np.float32)


def test_artifact_describes_the_kernel():
    art = build(axpy_func())
    assert art.entry == "axpy"
    assert [(p.name, p.shape, p.dtype) for p in art.params] == [
        ("X", (8, 24), "float32"),
        ("Y", (8, 24), "float32"),
    ]
    assert art.target == host_target().describe()
    assert art.target.startswith("llvm -mcpu=")
    assert 0 < art.compile_s < 10
    assert art.object_code[:4] == b"\x7fELF"


def test_wrong_argument_count(axpy):
    x, _ = inputs()
    with pytest.raises(KernelArgError, match=r"'axpy' takes 2 arrays \(X, Y\), got 1"):
        axpy(aligned(x))


def test_wrong_shape_names_the_parameter(axpy):
    x, y = inputs()
    with pytest.raises(
        KernelArgError, match=r"parameter 'Y'.*expected float32\[8, 24\], got float32\[8, 23\]"
    ):
        axpy(aligned(x), aligned(y[:, :23]))


def test_wrong_dtype_names_the_parameter(axpy):
    x, y = inputs()
    with pytest.raises(
        KernelArgError, match=r"parameter 'X'.*expected float32\[8, 24\], got float64\[8, 24\]"
    ):
        axpy(x.astype(np.float64), aligned(y))
    with pytest.raises(KernelArgError, match=r"parameter 'X'.*numpy array"):
        axpy([1.0], aligned(y))


def test_unaligned_and_strided_arrays_are_staged(axpy):
    x, y = inputs()
    want = 2 * x + y
    raw = np.empty(x.size * 4 + 64 + 4, dtype=np.uint8)
    start = (-raw.ctypes.data % 64) + 4  # 4 bytes past a 64-byte boundary
    x_bad = raw[start : start + x.size * 4].view(np.float32).reshape(x.shape)
    x_bad[...] = x
    y_strided = np.zeros((8, 48), dtype=np.float32)[:, ::2]
    y_strided[...] = y
    assert x_bad.ctypes.data % 64 != 0 and not y_strided.flags.c_contiguous
    axpy(x_bad, y_strided)
    np.testing.assert_allclose(y_strided, want, rtol=1e-6)  # copied back into the view


def test_aligned_helpers():
    a = empty((3, 5), "float64")
    assert a.shape == (3, 5) and a.dtype == np.float64 and a.ctypes.data % 64 == 0
    assert a.flags.c_contiguous and a.flags.writeable
    b = np.arange(10, dtype=np.float32)[1:]
    c = aligned(b)
    assert c.ctypes.data % 64 == 0 and np.array_equal(b, c)
    assert aligned(c) is c


def _run_in_child(blob: bytes, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    kernel = load(pickle.loads(blob))
    y = aligned(y)
    kernel(aligned(x), y)
    return y


def test_artifact_runs_in_a_fresh_process():
    art = build(axpy_func())
    blob = pickle.dumps(art)
    assert isinstance(pickle.loads(blob), Artifact)
    x, y = inputs()
    want = 2 * x + y
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_run_in_child, (blob, x, y))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_thread_count_setting(axpy):
    old = get_num_threads()
    with num_threads(1):
        assert get_num_threads() == 1
        x, y = inputs()
        want = 2 * x + y
        y = aligned(y)
        axpy(aligned(x), y)
        np.testing.assert_allclose(y, want, rtol=1e-6)
    assert get_num_threads() == old
    with pytest.raises(ValueError):
        set_num_threads(0)


def test_bind_checks_once_and_needs_ready_arrays(axpy):
    x, y = inputs()
    want = 2 * x + y
    x_a, y_a = aligned(x), aligned(y)
    call = axpy.bind(x_a, y_a)
    call()
    np.testing.assert_allclose(y_a, want, rtol=1e-6)
    with pytest.raises(KernelArgError, match=r"parameter 'Y'.*aligned"):
        axpy.bind(x_a, np.zeros((8, 48), dtype=np.float32)[:, ::2])


def test_a_bound_call_keeps_its_kernel_alive():
    import gc

    x, y = inputs()
    want = 2 * x + y
    x_a, y_a = aligned(x), aligned(y)
    call = load(build(axpy_func())).bind(x_a, y_a)  # the loaded kernel is dropped at once
    gc.collect()
    call()  # the code must still be mapped (it segfaulted before the call held it)
    np.testing.assert_allclose(y_a, want, rtol=1e-6)
