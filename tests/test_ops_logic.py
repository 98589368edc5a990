"""Comparisons, logic, where, cast and the gathers on computed indices, on every dtype:
the reference interpreter and the compiled default schedule (vectorized, parallel)
against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops import OpError
from compiler.runtime import aligned, empty, load
from compiler.schedule.default import default_schedule
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate

RNG = np.random.default_rng(7)


def values(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Random values of `dtype` with repeats (so comparisons are sometimes equal)."""
    if dtype == "bool":
        return RNG.integers(0, 2, shape).astype(bool)
    if dtype.startswith("float"):
        return RNG.integers(-3, 4, shape).astype(dtype) * np.asarray(0.5, dtype)
    info = np.iinfo(dtype)
    return RNG.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)


def check(build_op, arrays: list[np.ndarray], want: np.ndarray) -> None:
    """build_op(*placeholders) evaluated and compiled (default schedule) equals `want`."""
    phs = [te.placeholder(a.shape, str(a.dtype), name=f"in{k}") for k, a in enumerate(arrays)]
    out = build_op(*phs)
    assert out.dtype == str(want.dtype) and out.shape == want.shape
    np.testing.assert_array_equal(evaluate([out], dict(zip(phs, arrays)))[0], want)
    dag = ComputeDAG([out])
    kernel = load(build(lower(default_schedule(dag))))
    got = empty(out.shape, out.dtype)
    by_placeholder = dict(zip(phs, arrays))  # kernel parameters: the DAG's read order
    kernel(*[aligned(by_placeholder[p]) for p in dag.placeholders], got)
    np.testing.assert_array_equal(got, want)


COMPARISONS = [
    (ops.equal, np.equal),
    (ops.not_equal, np.not_equal),
    (ops.less, np.less),
    (ops.less_equal, np.less_equal),
    (ops.greater, np.greater),
    (ops.greater_equal, np.greater_equal),
]


@pytest.mark.parametrize("dtype", ["float32", "int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("op,ref", COMPARISONS, ids=[c[1].__name__ for c in COMPARISONS])
def test_comparisons_with_broadcasting(op, ref, dtype):
    a, b = values((3, 1, 37), dtype), values((5, 37), dtype)
    check(op, [a, b], ref(a, b))


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_comparison_with_a_scalar(dtype):
    a = values((4, 19), dtype)
    check(lambda x: ops.less(x, 1), [a], a < 1)
    check(lambda x: ops.equal(x, 0), [a], a == 0)


LOGIC = [
    (ops.logical_and, np.logical_and),
    (ops.logical_or, np.logical_or),
    (ops.logical_xor, np.logical_xor),
]


@pytest.mark.parametrize("op,ref", LOGIC, ids=[c[1].__name__ for c in LOGIC])
def test_logic(op, ref):
    a, b = values((2, 3, 33), "bool"), values((3, 1), "bool")
    check(op, [a, b], ref(a, b))
    check(lambda x: op(x, True), [a], ref(a, True))


def test_logical_not():
    a = values((7, 21), "bool")
    check(ops.logical_not, [a], ~a)


@pytest.mark.parametrize("dtype", ["float32", "int64", "int32", "bool", "uint8"])
def test_where_broadcasts_condition_and_branches(dtype):
    cond, a, b = values((2, 1, 17), "bool"), values((3, 17), dtype), values((2, 3, 1), dtype)
    check(ops.where, [cond, a, b], np.where(cond, a, b))


def test_where_with_scalar_branches():
    cond, x = values((4, 18), "bool"), values((4, 18), "float32")
    check(lambda c, v: ops.where(c, v, -1e9), [cond, x], np.where(cond, x, np.float32(-1e9)))
    want = np.where(cond, np.int64(1), np.int64(-7))
    check(lambda c: ops.where(c, 1, -7, dtype="int64"), [cond], want)


CASTS = ["float32", "int64", "int32", "int8", "uint8", "bool"]


@pytest.mark.parametrize("src", CASTS)
@pytest.mark.parametrize("dst", CASTS)
def test_cast_like_numpy_astype(src, dst):
    a = values((5, 23), src)
    if src == "float32":
        a = a * np.float32(7.3)  # fractions (truncated toward zero) and negatives
        if dst == "uint8":
            a = np.abs(a)  # numpy leaves negative float -> uint8 undefined
    check(lambda x: ops.cast(x, dst), [a], a.astype(dst))


def test_cast_wraps_like_numpy():
    a = np.array([[300, -129, 255, 2**31 + 5, -(2**40), 127]], np.int64)
    for dst in ("int8", "uint8", "int32"):
        check(lambda x, d=dst: ops.cast(x, d), [a], a.astype(dst))


@pytest.mark.parametrize("ids_dtype", ["int64", "int32"])
def test_gather_embedding_lookup_with_negative_indices(ids_dtype):
    table = values((50, 24), "float32")
    ids = RNG.integers(-50, 50, (3, 9)).astype(ids_dtype)
    check(lambda t, i: ops.gather(t, i, axis=0), [table, ids], table[ids])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_gather_along_any_axis(axis):
    data = values((4, 5, 6), "int64")
    ids = RNG.integers(-3, 3, (2, 3)).astype(np.int64)
    want = np.take(data, np.where(ids < 0, ids + data.shape[axis], ids), axis=axis)
    check(lambda d, i: ops.gather(d, i, axis=axis), [data, ids], want)


def test_gather_clamps_indices_out_of_range():
    """ONNX leaves them undefined; the kernel never reads outside the table."""
    table, ids = values((10, 16), "float32"), np.array([[12, -30, 9]], np.int64)
    check(lambda t, i: ops.gather(t, i), [table, ids], table[[[9, 0, 9]]])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis):
    data = values((4, 5, 6), "float32")
    shape = list(data.shape)
    shape[axis] = 3
    ids = RNG.integers(-data.shape[axis], data.shape[axis], shape).astype(np.int64)
    want = np.take_along_axis(data, np.where(ids < 0, ids + data.shape[axis], ids), axis=axis)
    check(lambda d, i: ops.gather_elements(d, i, axis=axis), [data, ids], want)


def test_gather_nd():
    data = values((4, 5, 6), "float32")
    ids = np.array([[[0, 1], [3, -1]], [[2, 2], [1, 4]]], np.int64)  # [2, 2, 2]
    want = np.stack([data[i, j] for i, j in ids.reshape(-1, 2)]).reshape(2, 2, 6)
    check(ops.gather_nd, [data, ids], want)


def test_gather_nd_with_batch_dims():
    data = values((3, 4, 5), "int32")
    ids = RNG.integers(0, 4, (3, 2, 1)).astype(np.int64)
    want = np.stack([data[b][ids[b, :, 0]] for b in range(3)])
    check(lambda d, i: ops.gather_nd(d, i, batch_dims=1), [data, ids], want)


def test_broadcast_to():
    x = values((3, 1), "bool")
    check(lambda v: ops.broadcast_to(v, (2, 3, 5)), [x], np.broadcast_to(x, (2, 3, 5)))


@pytest.mark.parametrize(
    "build_op,message",
    [
        (lambda f, i: ops.gather(f, f), "indices must be integers"),
        (lambda f, i: ops.logical_and(f, f), "must be bool"),
        (lambda f, i: ops.where(i, f, f), "cond must be bool"),
        (lambda f, i: ops.equal(f, i), "different dtypes"),
        (lambda f, i: ops.cast(f, "float16"), "unknown dtype"),
        (lambda f, i: ops.gather_elements(f, te.placeholder((9, 9), "int64")), "do not fit"),
    ],
)
def test_bad_arguments_are_one_line_op_errors(build_op, message):
    f, i = te.placeholder((4, 5)), te.placeholder((4, 5), "int64")
    with pytest.raises(OpError, match=message) as err:
        build_op(f, i)
    assert "\n" not in str(err.value)
