"""Polynomial exp, tanh and erf on float32 vectors.

LLVM has no vector forms of these in its code generator (it calls libm lane by
lane: 3-17 ns an element); these stay in SIMD registers. Accuracy against
float64 references, over the whole float range: exp 1e-7, tanh and erf 4e-7
relative (a few ulp). Scalars keep libm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llvmlite import ir

from compiler.codegen.intrinsics import I32, intrinsic, lanes_of

# Cephes expf: exp(x) = 2^n * exp(r), x = n*ln2 + r, |r| <= ln2/2
# below _EXP_LO, n = -127: a zero exponent field; up to _EXP_HI, 2^n stays finite
_EXP_LO, _EXP_HI = -88.0, 88.3762626647949
_ROUND_MAGIC = 12582912.0  # 1.5 * 2^23: x + this rounds x to an integer in the low bits
_LOG2E = 1.44269504088896341
_LN_FLT_MAX = 88.72283935546875
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_EXP_POLY: tuple[float, ...] = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)
# Eigen's rational approximations: f(x) = x * P(x^2) / Q(x^2) on a clamped range
_TANH_CLAMP, _TANH_TINY = 7.90531110763549805, 0.0004
_TANH_P: tuple[float, ...] = (
    -2.76076847742355e-16,
    2.00018790482477e-13,
    -8.60467152213735e-11,
    5.12229709037114e-08,
    1.48572235717979e-05,
    6.37261928875436e-04,
    4.89352455891786e-03,
)
_TANH_Q: tuple[float, ...] = (
    1.19825839466702e-06,
    1.18534705686654e-04,
    2.26843463243900e-03,
    4.89352518554385e-03,
)
_ERF_CLAMP = 4.0
_ERF_P: tuple[float, ...] = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q: tuple[float, ...] = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _lanes(x: ir.Value) -> int:
    lanes = lanes_of(x)
    assert lanes is not None, "vector math on a scalar"
    return lanes


def _const(x: ir.Value, c: float) -> ir.Constant:
    return ir.Constant(x.type, [ir.Constant(ir.FloatType(), c)] * _lanes(x))


def _call(b: ir.IRBuilder, name: str, args: Sequence[ir.Value]) -> ir.Value:
    t = args[0].type
    return b.call(intrinsic(b.module, name, t, [t] * len(args), [t]), list(args))


def _fma(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    return _call(b, "llvm.fma", [x, y, z])


def _horner(b: ir.IRBuilder, x: ir.Value, coefs: Sequence[float]) -> ir.Value:
    """coefs[0]*x^(n-1) + ... + coefs[-1], highest power first."""
    p: ir.Value = _const(x, coefs[0])
    for c in coefs[1:]:
        p = _fma(b, p, x, _const(x, c))
    return p


def _clamp(b: ir.IRBuilder, x: ir.Value, lo: float, hi: float) -> ir.Value:
    x = b.select(b.fcmp_ordered("<", x, _const(x, lo)), _const(x, lo), x)
    return b.select(b.fcmp_ordered(">", x, _const(x, hi)), _const(x, hi), x)


def fast_exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """exp(x); 0 below about -87.7 (where float32 turns subnormal), inf above ln(FLT_MAX),
    NaN for NaN (as libm); between 88.38 and 88.72 about 2.2e38 (2^n stays finite)."""
    return b.select(
        b.fcmp_ordered(">", x, _const(x, _LN_FLT_MAX)), _const(x, math.inf), _exp_core(b, x)
    )


def _exp_core(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """exp(x) for x clamped to [_EXP_LO, _EXP_HI]; NaN stays NaN (the clamp's compares
    are false for it). n = round(x / ln2) comes from adding 1.5 * 2^23: the sum's low
    mantissa bits are n itself, so 2^n is those bits plus the bias, shifted into the
    exponent field; no floor, no float-to-int conversion (cheaper by three
    instructions of some twenty). At the low clamp n = -127 gives a zero exponent
    field: exp is 0 there, with no select."""
    xc = _clamp(b, x, _EXP_LO, _EXP_HI)
    magic = _const(x, _ROUND_MAGIC)
    t = _fma(b, xc, _const(x, _LOG2E), magic)
    n = b.fsub(t, magic)
    r = _fma(b, n, _const(x, -_LN2_HI), xc)
    r = _fma(b, n, _const(x, -_LN2_LO), r)
    poly = _horner(b, r, _EXP_POLY)
    y = b.fadd(_fma(b, poly, b.fmul(r, r), r), _const(x, 1.0))
    int_t = ir.VectorType(I32, _lanes(x))
    bias = ir.Constant(int_t, [ir.Constant(I32, 127)] * _lanes(x))
    shift = ir.Constant(int_t, [ir.Constant(I32, 23)] * _lanes(x))
    exponent = b.shl(b.add(b.bitcast(t, int_t), bias), shift)
    return b.fmul(y, b.bitcast(exponent, x.type))


def _rational(
    b: ir.IRBuilder, x: ir.Value, clamp: float, p: Sequence[float], q: Sequence[float]
) -> ir.Value:
    xc = _clamp(b, x, -clamp, clamp)
    x2 = b.fmul(xc, xc)
    return b.fdiv(b.fmul(_horner(b, x2, p), xc), _horner(b, x2, q))


def fast_tanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    approx = _rational(b, x, _TANH_CLAMP, _TANH_P, _TANH_Q)
    tiny = b.fcmp_ordered("<", _call(b, "llvm.fabs", [x]), _const(x, _TANH_TINY))
    return b.select(tiny, x, approx)  # tanh(x) = x to float precision


def fast_erf(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _rational(b, x, _ERF_CLAMP, _ERF_P, _ERF_Q)


def fast_sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """1 / (1 + exp(-x)), exp clamped: past the clamp sigmoid is 1 or below 5e-39 either
    way, so fast_exp's select for inf is left out (NaN stays NaN through the
    polynomial)."""
    one = _const(x, 1.0)
    return b.fdiv(one, b.fadd(one, _exp_core(b, b.fneg(x))))
