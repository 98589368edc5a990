"""Code generation of the math functions, scalar and SIMD (polynomials over the whole
float range), against numpy."""

import math

import numpy as np
import pytest
from codegen_helpers import RNG, SERIAL, VECTORIZED, close, rand, run, zeros

from compiler import te
from compiler.lower.loop_ir import Buffer, For, Load, PrimFunc, Store, seq
from compiler.runtime import aligned
from compiler.te.constructors import ceil as ceil_
from compiler.te.constructors import erf, exp, fabs, power, rsqrt, sigmoid, sqrt
from compiler.te.constructors import floor as floor_
from compiler.te.constructors import log as log_
from compiler.te.constructors import tanh as tanh_
from compiler.te.expr import FloatImm, Var
from compiler.te.kinds import MathFunc


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(x.astype(np.float64))


MATH_CASES = {
    MathFunc.EXP: (exp, np.exp, (-3.0, 3.0)),
    MathFunc.LOG: (log_, np.log, (0.1, 5.0)),
    MathFunc.SQRT: (sqrt, np.sqrt, (0.1, 5.0)),
    MathFunc.RSQRT: (rsqrt, lambda x: 1.0 / np.sqrt(x), (0.1, 5.0)),
    MathFunc.TANH: (tanh_, np.tanh, (-3.0, 3.0)),
    MathFunc.ERF: (erf, _erf, (-3.0, 3.0)),
    MathFunc.SIGMOID: (sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), (-6.0, 6.0)),
    MathFunc.POW: (lambda x: power(x, FloatImm(1.7)), lambda x: np.power(x, 1.7), (0.1, 4.0)),
    MathFunc.ABS: (fabs, np.abs, (-3.0, 3.0)),
    MathFunc.FLOOR: (floor_, np.floor, (-3.0, 3.0)),
    MathFunc.CEIL: (ceil_, np.ceil, (-3.0, 3.0)),
    **{
        MathFunc(name): (getattr(te, name), getattr(np, numpy_name), domain)
        for name, numpy_name, domain in (
            ("sin", "sin", (-7.0, 7.0)),
            ("cos", "cos", (-7.0, 7.0)),
            ("tan", "tan", (-1.4, 1.4)),
            ("asin", "arcsin", (-0.99, 0.99)),
            ("acos", "arccos", (-0.99, 0.99)),
            ("atan", "arctan", (-5.0, 5.0)),
            ("sinh", "sinh", (-3.0, 3.0)),
            ("cosh", "cosh", (-3.0, 3.0)),
            ("asinh", "arcsinh", (-5.0, 5.0)),
            ("acosh", "arccosh", (1.01, 5.0)),
            ("atanh", "arctanh", (-0.99, 0.99)),
        )
    },
}


def test_every_math_function_has_a_case():
    assert set(MATH_CASES) == set(MathFunc)


@pytest.mark.parametrize("kind", [SERIAL, VECTORIZED])
@pytest.mark.parametrize("func", list(MathFunc), ids=lambda f: f.value)
def test_math_function(func, kind):
    build_expr, reference, (low, high) = MATH_CASES[func]
    n = 35
    X, out = Buffer("X", (n,)), Buffer("out", (n,))
    i = Var("i")
    body = For(i, n, kind, Store(out, i, build_expr(Load(X, i))))
    x, o = rand(n, low=low, high=high), zeros(n)
    run(PrimFunc(f"math_{func.name.lower()}_{kind.value}", (X, out), body), x, o)
    close(o, reference(x).astype(np.float32))


def test_float64_math_and_pow_of_two_vectors():
    n = 12
    X, out = Buffer("X", (n,), "float64"), Buffer("out", (2, n), "float64")
    i = Var("i")
    x = Load(X, i)
    body = For(
        i, n, VECTORIZED, seq(Store(out, i, tanh_(x) + exp(x)), Store(out, n + i, power(x, x)))
    )
    x_np = aligned(RNG.uniform(0.1, 2.0, n))
    o = zeros(2, n, dtype="float64")
    run(PrimFunc("math64", (X, out), body), x_np, o)
    close(o[0], np.tanh(x_np) + np.exp(x_np))
    close(o[1], x_np**x_np)


FAST_RANGES = {
    MathFunc.EXP: (exp, np.exp, (-87.0, 88.0)),
    MathFunc.TANH: (tanh_, np.tanh, (-20.0, 20.0)),
    MathFunc.ERF: (erf, _erf, (-10.0, 10.0)),
    MathFunc.SIGMOID: (sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), (-80.0, 80.0)),
}


@pytest.mark.parametrize("func", list(FAST_RANGES), ids=lambda f: f.value)
def test_vector_math_polynomials_over_the_float_range(func):
    """SIMD exp/tanh/erf/sigmoid are polynomials: check them far beyond the usual inputs,
    near zero (relative accuracy of odd functions) and on the saturating tails."""
    build_expr, reference, (low, high) = FAST_RANGES[func]
    tiny = np.geomspace(1e-9, 1e-2, 64)
    xs = np.concatenate([np.linspace(low, high, 4096), tiny, -tiny, [0.0]]).astype(np.float32)
    n = xs.size
    X, out = Buffer("X", (n,)), Buffer("out", (n,))
    i = Var("i")
    body = For(i, n, VECTORIZED, Store(out, i, build_expr(Load(X, i))))
    o = zeros(n)
    run(PrimFunc(f"fast_{func.value}", (X, out), body), aligned(xs), o)
    want = reference(xs.astype(np.float64))
    np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-37)


def _simd(build_expr, xs: np.ndarray, name: str) -> np.ndarray:
    """`build_expr` over float32 `xs` in one vectorized loop."""
    n = xs.size
    X, out = Buffer("X", (n,)), Buffer("out", (n,))
    i = Var("i")
    o = zeros(n)
    run(
        PrimFunc(name, (X, out), For(i, n, VECTORIZED, Store(out, i, build_expr(Load(X, i))))),
        aligned(xs),
        o,
    )
    return o


def test_vector_sigmoid_saturates_and_keeps_nan():
    """The SIMD sigmoid leaves out exp's select for inf: it must still give 1 and 0 on
    the tails, and NaN for NaN."""
    xs = np.array([-np.inf, -1e30, -200.0, -89.0, 89.0, 200.0, 1e30, np.inf, np.nan] * 2)
    o = _simd(sigmoid, xs.astype(np.float32), "fast_sigmoid_tails")
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-xs.astype(np.float64)))
    np.testing.assert_allclose(o, want, rtol=1e-6, atol=1e-37)  # NaN where NaN


def test_vector_exp_tails_without_selects():
    """The SIMD exp rounds by adding 1.5 * 2^23 and takes 2^n from the sum's bits: below
    the normal range it must give 0 (or the subnormal value), inf past ln(FLT_MAX), NaN
    for NaN, and exact 1 at 0."""
    xs = np.array(
        [-np.inf, -1e30, -200.0, -88.5, -88.0, -87.9, -87.5, 0.0, 88.8, 200.0, np.inf, np.nan]
    ).astype(np.float32)
    o = _simd(exp, xs, "fast_exp_tails")
    with np.errstate(over="ignore"):
        want = np.exp(xs.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(o, want, rtol=1e-5, atol=1.2e-38)  # NaN where NaN
    assert o[7] == 1.0 and np.isinf(o[8]) and np.isnan(o[-1])
