"""The reference interpreter: semantics of each expression kind, against numpy."""

import numpy as np
import pytest

from compiler import te
from compiler.te import evaluate as evaluate_module
from compiler.te.evaluate import EvaluateError, evaluate

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def test_matmul_sum_reduction():
    A, B = te.placeholder((7, 5), name="A"), te.placeholder((5, 3), name="B")
    k = te.reduce_axis(5, name="k")
    C = te.compute((7, 3), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    a, b = rand(7, 5), rand(5, 3)
    (c,) = evaluate([C], {A: a, B: b})
    assert c.dtype == np.float32 and c.shape == (7, 3)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def test_max_min_over_two_reduce_axes():
    A = te.placeholder((3, 4, 5), name="A")
    r1, r2 = te.reduce_axis(4, name="r1"), te.reduce_axis(5, name="r2")
    mx = te.compute((3,), lambda i: te.max(A[i, r1, r2], axis=(r1, r2)), name="mx")
    mn = te.compute((3,), lambda i: te.min(A[i, r1, r2], axis=[r1, r2]), name="mn")
    a = rand(3, 4, 5)
    got_max, got_min = evaluate([mx, mn], {A: a})
    np.testing.assert_array_equal(got_max, a.max(axis=(1, 2)))
    np.testing.assert_array_equal(got_min, a.min(axis=(1, 2)))


def test_floor_division_and_modulo_of_negative_numbers():
    out = te.compute((11, 2), lambda i, j: (i - 5) // (3 - 6 * j) * 100 + (i - 5) % (3 - 6 * j))
    (got,) = evaluate([out], {})
    i, j = np.arange(11)[:, None] - 5, 3 - 6 * np.arange(2)[None, :]
    np.testing.assert_array_equal(got, np.floor_divide(i, j) * 100 + np.mod(i, j))
    assert got.dtype == np.int32


def test_select_ignores_out_of_range_reads_in_the_unselected_branch():
    A = te.placeholder((5,), name="A")
    shifted = te.compute(
        (7,), lambda i: te.select(te.logical_and(i >= 1, i < 6), A[i - 1], -1.0), name="s"
    )
    a = rand(5)
    (got,) = evaluate([shifted], {A: a})
    np.testing.assert_array_equal(got, np.concatenate([[-1.0], a, [-1.0]]).astype(np.float32))


def test_nested_select_guards_each_branch():
    A = te.placeholder((4,), name="A")
    B = te.placeholder((3,), name="B")
    out = te.compute(
        (9,), lambda i: te.select(i < 4, A[i], te.select(i < 7, B[i - 4], 0.0)), name="cat"
    )
    a, b = rand(4), rand(3)
    (got,) = evaluate([out], {A: a, B: b})
    np.testing.assert_array_equal(got, np.concatenate([a, b, [0, 0]]).astype(np.float32))


def test_a_used_out_of_range_read_raises():
    A = te.placeholder((5,), name="A")
    bad = te.compute((5,), lambda i: A[i + 1], name="bad")
    with pytest.raises(EvaluateError, match=r"stage bad: reads A \(5,\) at index 5"):
        evaluate([bad], {A: rand(5)})


def test_math_calls_cast_and_logic():
    A = te.placeholder((6,), name="A")
    out = te.compute(
        (6,),
        lambda i: te.select(
            te.logical_or(te.equal(i, 2), ~(A[i] < 0.5)),
            te.exp(A[i]) + te.erf(A[i]) + te.sigmoid(A[i]) + te.tanh(A[i]),
            te.cast("float32", i) + te.power(te.fabs(A[i]), 1.5) + te.sqrt(te.fabs(A[i])),
        ),
    )
    a = np.array([-3.0, -0.5, 0.1, 0.5, 2.0, 40.0], np.float32)
    (got,) = evaluate([out], {A: a})
    from math import erf

    erf_a = np.array([erf(v) for v in a])
    take = (np.arange(6) == 2) | ~(a < 0.5)
    first = np.exp(a.astype(np.float64)) + erf_a + 1 / (1 + np.exp(-a.astype(np.float64)))
    first += np.tanh(a)
    second = np.arange(6) + np.abs(a) ** 1.5 + np.sqrt(np.abs(a))
    np.testing.assert_allclose(got, np.where(take, first, second), rtol=1e-6)


def test_stages_are_evaluated_once_in_dependency_order(monkeypatch):
    A = te.placeholder((4,), name="A")
    B = te.compute((4,), lambda i: A[i] * 2.0, name="B")
    C = te.compute((4,), lambda i: B[i] + 1.0, name="C")
    D = te.compute((4,), lambda i: B[i] * C[i], name="D")
    calls = []
    original = evaluate_module._evaluate_stage
    monkeypatch.setattr(
        evaluate_module, "_evaluate_stage", lambda s, m: calls.append(s.name) or original(s, m)
    )
    a = rand(4)
    d, b = evaluate([D, B], {A: a})
    assert calls == ["B", "C", "D"]
    np.testing.assert_allclose(d, (2 * a) * (2 * a + 1), rtol=1e-6)
    np.testing.assert_allclose(b, 2 * a)


def test_large_stages_are_evaluated_in_chunks(monkeypatch):
    monkeypatch.setattr(evaluate_module, "MAX_GRID_ELEMENTS", 50)
    A, B = te.placeholder((13, 9), name="A"), te.placeholder((9, 11), name="B")
    k = te.reduce_axis(9, name="k")
    C = te.compute((13, 11), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    a, b = rand(13, 9), rand(9, 11)
    (c,) = evaluate([C], {A: a, B: b})
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-6)


def test_scalar_stage_and_sum_accumulates_in_float64():
    A = te.placeholder((100000,), name="A")
    k = te.reduce_axis(100000, name="k")
    total = te.compute((), lambda: te.sum(A[k], axis=k), name="total")
    a = np.full(100000, 0.1, np.float32)
    (got,) = evaluate([total], {A: a})
    assert got.shape == () and got.dtype == np.float32
    assert got == np.float32(a.astype(np.float64).sum())


def test_missing_input_and_wrong_shape_are_errors():
    A = te.placeholder((3,), name="A")
    B = te.compute((3,), lambda i: A[i] + 1.0, name="B")
    with pytest.raises(EvaluateError, match=r"no value given for placeholder A"):
        evaluate([B], {})
    with pytest.raises(EvaluateError, match=r"input A: got shape \(4,\), the tensor has \(3,\)"):
        evaluate([B], {A: np.zeros(4, np.float32)})


def test_axis_names_must_be_unique_in_a_stage():
    A = te.placeholder((3, 3), name="A")
    k = te.reduce_axis(3, name="i")
    with pytest.raises(te.TEError, match="repeat an index name"):
        te.compute((3,), lambda i: te.sum(A[i, k], axis=k), name="B")
