"""The op library evaluated by the reference interpreter against plain numpy.

Convolutions, pads and pools are in test_ops_nn.py.
"""

from math import erf

import numpy as np
import pytest

from compiler import ops, te
from compiler.ops import OpError, tags
from compiler.te.evaluate import evaluate

RNG = np.random.default_rng(1)


def rand(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def run(out: te.Tensor, *pairs: tuple[te.Tensor, np.ndarray]) -> np.ndarray:
    return evaluate([out], dict(pairs))[0]


def stages(out: te.Tensor) -> list[te.Tensor]:
    """Every compute stage `out` depends on, itself included."""
    seen: dict[int, te.Tensor] = {}
    todo = [out]
    while todo:
        t = todo.pop()
        if id(t) not in seen and not t.is_placeholder:
            seen[id(t)] = t
            todo.extend(t.inputs)
    return list(seen.values())


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


# ---------------------------------------------------------------- elementwise

_erf = np.vectorize(erf)

UNARY = {
    "relu": (ops.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda t: ops.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "clip": (lambda t: ops.clip(t, -0.5, 1.25), lambda x: np.clip(x, -0.5, 1.25)),
    "sigmoid": (ops.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (ops.tanh, np.tanh),
    "gelu": (ops.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "exp": (ops.exp, np.exp),
    "abs": (ops.abs, np.abs),
    "neg": (ops.neg, np.negative),
    "erf": (ops.erf, _erf),
    "hard_sigmoid": (ops.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "hard_swish": (ops.hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
}
POSITIVE_UNARY = {
    "log": (ops.log, np.log),
    "sqrt": (ops.sqrt, np.sqrt),
    "rsqrt": (ops.rsqrt, lambda x: 1 / np.sqrt(x)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(7,), (3, 5, 2)])
def test_unary(name, shape):
    build, ref = UNARY[name]
    x = te.placeholder(shape, name="x")
    xv = rand(*shape, lo=-5, hi=5)
    y = build(x)
    assert y.tag == tags.ELEMWISE and y.shape == shape
    close(run(y, (x, xv)), ref(xv.astype(np.float64)))


@pytest.mark.parametrize("name", sorted(POSITIVE_UNARY))
def test_unary_positive_domain(name):
    build, ref = POSITIVE_UNARY[name]
    x = te.placeholder((13,), name="x")
    xv = rand(13, lo=0.1, hi=9)
    close(run(build(x), (x, xv)), ref(xv.astype(np.float64)))


BINARY = {
    "add": (ops.add, np.add),
    "subtract": (ops.subtract, np.subtract),
    "multiply": (ops.multiply, np.multiply),
    "divide": (ops.divide, np.divide),
    "power": (ops.power, np.power),
    "maximum": (ops.maximum, np.maximum),
    "minimum": (ops.minimum, np.minimum),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize(
    "shapes", [((4, 5), (4, 5)), ((3, 1, 5), (7, 1)), ((1,), (2, 3)), ((6, 1, 1), (1, 5, 3))]
)
def test_binary_broadcasting(name, shapes):
    build, ref = BINARY[name]
    a, b = te.placeholder(shapes[0], name="a"), te.placeholder(shapes[1], name="b")
    av, bv = rand(*shapes[0], lo=0.5, hi=2), rand(*shapes[1], lo=0.5, hi=2)
    out = build(a, b)
    want = ref(av.astype(np.float64), bv)
    expected_tag = tags.ELEMWISE if shapes[0] == shapes[1] else tags.BROADCAST
    assert out.tag == expected_tag
    close(run(out, (a, av), (b, bv)), want)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_python_scalars_on_either_side(name):
    build, ref = BINARY[name]
    x = te.placeholder((2, 3), name="x")
    xv = rand(2, 3, lo=0.5, hi=2)
    close(run(build(x, 1.5), (x, xv)), ref(xv.astype(np.float64), 1.5))
    close(run(build(3, x), (x, xv)), ref(3.0, xv.astype(np.float64)))


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0, 4.0, 2.5])
def test_power_of_a_small_integer_constant_is_products(exponent):
    """x ** 3 (GPT-2's GELU) as multiplies: a vector pow is a libm call per lane."""
    x = te.placeholder((3, 5), name="x")
    xv = rand(3, 5, lo=-2, hi=2) if exponent != 2.5 else rand(3, 5, lo=0.5, hi=2)
    out = ops.power(x, exponent)
    assert ("pow" in repr(out.body).lower()) == (exponent == 2.5)
    close(run(out, (x, xv)), np.power(xv.astype(np.float64), exponent))


def test_same_shape_binary_reads_are_plain_even_with_unit_dims():
    a, b = te.placeholder((1, 4, 1), name="a"), te.placeholder((1, 4, 1), name="b")
    out = ops.add(a, b)
    assert repr(out.body) == "(a[i0, i1, i2] + b[i0, i1, i2])"


def test_elementwise_errors():
    a, b = te.placeholder((2, 3), name="a"), te.placeholder((4, 3), name="b")
    with pytest.raises(OpError, match=r"add: cannot broadcast shapes \(2, 3\) and \(4, 3\)"):
        ops.add(a, b)
    with pytest.raises(OpError, match="multiply: at least one operand must be a Tensor"):
        ops.multiply(2.0, 3.0)
    idx = te.placeholder((3,), dtype="int32", name="idx")
    with pytest.raises(OpError, match="dtypes differ: idx is int32, a is float32"):
        ops.add(idx, a)
    with pytest.raises(OpError, match="sigmoid: x must be float32 or float64, got int32"):
        ops.sigmoid(idx)
    with pytest.raises(OpError, match="the scalar 0.5 does not fit a int32 tensor"):
        ops.add(idx, 0.5)
    with pytest.raises(OpError, match="clip: lo 2.0 is greater than hi 1.0"):
        ops.clip(a, 2.0, 1.0)


def test_integer_elementwise():
    idx = te.placeholder((5,), dtype="int32", name="idx")
    v = np.array([-3, -1, 0, 2, 7], np.int32)
    got = run(ops.relu(ops.add(idx, 2)), (idx, v))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.maximum(v + 2, 0))


# ---------------------------------------------------------------------- linalg


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 13, 5), (16, 31, 17)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(m, k, n, ta, tb):
    A = te.placeholder((k, m) if ta else (m, k), name="A")
    B = te.placeholder((n, k) if tb else (k, n), name="B")
    av, bv = rand(*A.shape), rand(*B.shape)
    C = ops.matmul(A, B, transpose_a=ta, transpose_b=tb)
    assert C.tag == "matmul" and C.shape == (m, n)
    want = (av.T if ta else av).astype(np.float64) @ (bv.T if tb else bv)
    close(run(C, (A, av), (B, bv)), want)


@pytest.mark.parametrize(
    "sa,sb,tb",
    [((3, 5, 7), (3, 7, 2), False), ((2, 1, 4, 3), (5, 3, 6), False), ((5, 3), (2, 1, 3, 4), False)]
    + [((2, 3, 5, 7), (2, 3, 11, 7), True)],
)
def test_batch_matmul_broadcasts_batch_dims(sa, sb, tb):
    A, B = te.placeholder(sa, name="A"), te.placeholder(sb, name="B")
    av, bv = rand(*sa), rand(*sb)
    C = ops.batch_matmul(A, B, transpose_b=tb)
    assert C.tag == "batch_matmul"
    want = np.matmul(av.astype(np.float64), np.swapaxes(bv, -1, -2) if tb else bv)
    close(run(C, (A, av), (B, bv)), want)


@pytest.mark.parametrize("with_bias", [False, True])
def test_dense(with_bias):
    X, W, b = (te.placeholder(s, name=n) for s, n in [((3, 11), "X"), ((5, 11), "W"), ((5,), "b")])
    xv, wv, bv = rand(3, 11), rand(5, 11), rand(5)
    Y = ops.dense(X, W, b if with_bias else None)
    want = xv.astype(np.float64) @ wv.T + (bv if with_bias else 0)
    close(run(Y, (X, xv), (W, wv), (b, bv)), want)
    if with_bias:
        assert Y.tag == tags.BROADCAST and Y.inputs[0].tag == "dense"
    else:
        assert Y.tag == "dense"


def test_bias_add_on_channels():
    x, b = te.placeholder((2, 3, 4, 5), name="x"), te.placeholder((3,), name="b")
    xv, bv = rand(2, 3, 4, 5), rand(3)
    close(run(ops.bias_add(x, b), (x, xv), (b, bv)), xv + bv[:, None, None])
    b5, b5v = te.placeholder((5,), name="b5"), rand(5)
    close(run(ops.bias_add(x, b5, axis=-1), (x, xv), (b5, b5v)), xv + b5v)


def test_linalg_errors():
    A, B = te.placeholder((4, 5), name="A"), te.placeholder((6, 3), name="B")
    with pytest.raises(OpError, match=r"matmul: A \(4, 5\) has K=5 but B \(6, 3\) has K=6"):
        ops.matmul(A, B)
    with pytest.raises(OpError, match=r"matmul: B must be 2-D, got shape \(2, 6, 3\)"):
        ops.matmul(A, te.placeholder((2, 6, 3)))
    with pytest.raises(OpError, match=r"batch_matmul: cannot broadcast shapes \(2,\) and \(3,\)"):
        ops.batch_matmul(te.placeholder((2, 4, 5)), te.placeholder((3, 5, 6)))
    with pytest.raises(OpError, match="dense: X .* has 5 input features but W .* expects 3"):
        ops.dense(A, B)
    with pytest.raises(OpError, match="bias_add: bias has 4 elements but data"):
        ops.bias_add(te.placeholder((2, 3, 8, 8)), te.placeholder((4,)))


# ------------------------------------------------------------------ reduction


@pytest.mark.parametrize("shape,axes", [((7,), None), ((3, 5, 2), 1), ((3, 5, 2), (0, -1))])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(shape, axes, keepdims):
    x = te.placeholder(shape, name="x")
    xv = rand(*shape).astype(np.float64)
    np_axes = tuple(np.atleast_1d(axes)) if axes is not None else None
    for build, ref in [
        (ops.reduce_sum, np.sum),
        (ops.reduce_mean, np.mean),
        (ops.reduce_max, np.max),
        (ops.reduce_min, np.min),
    ]:
        out = build(x, axes, keepdims=keepdims)
        assert out.tag == "reduce" and len(out.reduce_axes) >= 1
        close(run(out, (x, xv)), np.asarray(ref(xv, axis=np_axes, keepdims=keepdims)))


def test_long_mean():
    x = te.placeholder((4, 4099), name="x")
    xv = rand(4, 4099)
    close(run(ops.reduce_mean(x, -1), (x, xv)), xv.astype(np.float64).mean(-1), rtol=1e-4)


def test_reduction_errors():
    x = te.placeholder((3, 4), name="x")
    with pytest.raises(OpError, match="reduce_sum: axes 2 is out of range for a 2-D tensor"):
        ops.reduce_sum(x, 2)
    with pytest.raises(OpError, match=r"reduce_max: axes \[1, -1\] name the same axis twice"):
        ops.reduce_max(x, [1, -1])
    with pytest.raises(OpError, match="reduce_min: no axes to reduce"):
        ops.reduce_min(x, [])


# ----------------------------------------------------------------------- norm


@pytest.mark.parametrize("shape,axis", [((5,), -1), ((3, 7), -1), ((2, 5, 3), 1), ((4, 3), 0)])
def test_softmax(shape, axis):
    x = te.placeholder(shape, name="x")
    xv = rand(*shape, lo=-30, hi=30).astype(np.float64)
    out = ops.softmax(x, axis)
    e = np.exp(xv - xv.max(axis=axis, keepdims=True))
    close(run(out, (x, xv)), e / e.sum(axis=axis, keepdims=True))
    # the row max, the exponentials (computed once, read by the sum and the output)
    assert sorted(t.tag for t in stages(out)) == [tags.ELEMWISE] + ["softmax"] * 3


def test_softmax_is_stable_for_large_inputs():
    x = te.placeholder((2, 3), name="x")
    xv = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], np.float32)
    got = run(ops.softmax(x), (x, xv))
    assert np.isfinite(got).all()
    close(got[0], np.exp([-2.0, -1.0, 0.0]) / np.exp([-2.0, -1.0, 0.0]).sum())


@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((2, 3, 5), 1), ((2, 3, 5), -1), ((6,), 0)])
@pytest.mark.parametrize("with_beta", [True, False])
def test_layer_norm(shape, axis, with_beta):
    x = te.placeholder(shape, name="x")
    inner = shape[axis % len(shape) :]
    gamma, beta = te.placeholder(inner, name="gamma"), te.placeholder(inner, name="beta")
    xv, gv, bv = rand(*shape, lo=-3, hi=5), rand(*inner), rand(*inner)
    out = ops.layer_norm(x, gamma, beta if with_beta else None, axis=axis, eps=1e-5)
    red = tuple(range(axis % len(shape), len(shape)))
    x64 = xv.astype(np.float64)
    mean, var = x64.mean(axis=red, keepdims=True), x64.var(axis=red, keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-5) * gv + (bv if with_beta else 0)
    close(run(out, (x, xv), (gamma, gv), (beta, bv)), want, rtol=1e-4)
    assert [t.tag for t in stages(out)] == ["layer_norm"] * 3


def test_norm_errors():
    x = te.placeholder((2, 5, 7), name="x")
    with pytest.raises(OpError, match="softmax: axis 3 is out of range for a 3-D tensor"):
        ops.softmax(x, 3)
    with pytest.raises(OpError, match=r"layer_norm: gamma has shape \(5,\) but x \(2, 5, 7\)"):
        ops.layer_norm(x, te.placeholder((5,)), te.placeholder((7,)))
    with pytest.raises(OpError, match=r"layer_norm: beta has shape \(7,\) .* \(5, 7\)"):
        ops.layer_norm(x, te.placeholder((5, 7)), te.placeholder((7,)), axis=1)
