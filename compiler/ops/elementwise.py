"""Elementwise ops: unary activations and math, binary ops with numpy broadcasting.

Every op is one stage tagged "injective,elemwise", or "injective,broadcast" when
a tensor operand is broadcast; such stages fuse into their neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from compiler import te
from compiler.ops import tags
from compiler.ops.errors import OpError
from compiler.ops.rounding import int_power, trunc_div
from compiler.ops.shapes import (
    FLOAT_DTYPES,
    as_operand,
    broadcast_read,
    broadcast_shapes,
    check_float,
    check_same_dtype,
    check_tensor,
)
from compiler.te import Expr, Tensor
from compiler.te.kinds import INT_DTYPES

Operand = Tensor | float  # Python numbers (int too) become constants of the tensor's dtype
UnaryFn = Callable[[Expr], Expr]


def _unary(op: str, x: Tensor, fn: UnaryFn, *, float_only: bool = True) -> Tensor:
    check_tensor(op, "x", x)
    if float_only:
        check_float(op, "x", x)
    return te.compute(x.shape, lambda *i: fn(x[i]), name=op, tag=tags.ELEMWISE)


def relu(x: Tensor) -> Tensor:
    """max(x, 0). Example: `y = relu(x)`."""
    return _unary("relu", x, lambda v: te.max_expr(v, 0), float_only=False)


def leaky_relu(x: Tensor, alpha: float = 0.01) -> Tensor:
    """x if x > 0 else alpha * x. Example: `y = leaky_relu(x, 0.1)`."""
    return _unary("leaky_relu", x, lambda v: te.select(v > 0.0, v, v * float(alpha)))


def clip(x: Tensor, lo: float, hi: float) -> Tensor:
    """min(max(x, lo), hi). Example: `relu6 = clip(x, 0.0, 6.0)`."""
    if lo > hi:
        raise OpError(f"clip: lo {lo} is greater than hi {hi}")
    return _unary("clip", x, lambda v: te.min_expr(te.max_expr(v, lo), hi))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)). Example: `y = sigmoid(x)`."""
    return _unary("sigmoid", x, te.sigmoid)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent. Example: `y = tanh(x)`."""
    return _unary("tanh", x, te.tanh)


def gelu(x: Tensor) -> Tensor:
    """0.5 * x * (1 + erf(x / sqrt(2))), the exact (erf) form. Example: `y = gelu(x)`."""
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    return _unary("gelu", x, lambda v: 0.5 * v * (1.0 + te.erf(v * inv_sqrt2)))


def exp(x: Tensor) -> Tensor:
    """e ** x. Example: `y = exp(x)`."""
    return _unary("exp", x, te.exp)


def log(x: Tensor) -> Tensor:
    """Natural logarithm. Example: `y = log(x)`."""
    return _unary("log", x, te.log)


def sqrt(x: Tensor) -> Tensor:
    """Square root. Example: `y = sqrt(x)`."""
    return _unary("sqrt", x, te.sqrt)


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x). Example: `y = rsqrt(x)`."""
    return _unary("rsqrt", x, te.rsqrt)


def absolute(x: Tensor) -> Tensor:
    """|x| (also exported as `abs`), of any numeric dtype. Example: `y = absolute(x)`."""
    if x.dtype in INT_DTYPES:
        return _unary("abs", x, lambda v: te.select(v < 0, -v, v), float_only=False)
    return _unary("abs", x, te.fabs)


def negative(x: Tensor) -> Tensor:
    """-x (also exported as `neg`). Example: `y = negative(x)`."""
    return _unary("neg", x, lambda v: -v, float_only=False)


TRIG_FUNCTIONS = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                  "acosh", "atanh")  # fmt: skip


def trig(x: Tensor, func: str = "sin") -> Tensor:
    """A trigonometric or hyperbolic function of TRIG_FUNCTIONS (libm per element).
    Example: `y = trig(x, "cos")`."""
    if func not in TRIG_FUNCTIONS:
        raise OpError(f"trig: func must be one of {', '.join(TRIG_FUNCTIONS)}, got {func!r}")
    return _unary(func, x, getattr(te, func))


def erf(x: Tensor) -> Tensor:
    """The error function. Example: `y = erf(x)`."""
    return _unary("erf", x, te.erf)


def hard_sigmoid(x: Tensor, alpha: float = 0.2, beta: float = 0.5) -> Tensor:
    """clip(alpha * x + beta, 0, 1), ONNX HardSigmoid. Example: `y = hard_sigmoid(x)`."""
    return _unary("hard_sigmoid", x, lambda v: _hard_sigmoid(v, alpha, beta))


def hard_swish(x: Tensor) -> Tensor:
    """x * hard_sigmoid(x, 1/6, 1/2), ONNX HardSwish. Example: `y = hard_swish(x)`."""
    return _unary("hard_swish", x, lambda v: v * _hard_sigmoid(v, 1.0 / 6.0, 0.5))


def _hard_sigmoid(v: Expr, alpha: float, beta: float) -> Expr:
    return te.min_expr(te.max_expr(v * float(alpha) + float(beta), 0.0), 1.0)


abs = absolute  # the op's public name (shadows the builtin here only)
neg = negative


# ------------------------------------------------------------------ binary


def _binary(op: str, a: Operand, b: Operand, fn: Callable[[Expr, Expr], Expr]) -> Tensor:
    """One stage computing fn(a, b) with numpy broadcasting; either side may be a scalar."""
    tensors = [v for v in (a, b) if isinstance(v, Tensor)]
    if not tensors:
        raise OpError(f"{op}: at least one operand must be a Tensor, got {a!r} and {b!r}")
    if len(tensors) == 2:
        check_same_dtype(op, tensors[0], tensors[1])
        shape = broadcast_shapes(op, tensors[0].shape, tensors[1].shape)
    else:
        shape = tensors[0].shape
    dtype = tensors[0].dtype

    def operand(v: Operand) -> Callable[[tuple[Expr, ...]], Expr]:
        """The operand's value at an output index: a (broadcast) read or a constant."""
        if isinstance(v, Tensor):
            return lambda i: broadcast_read(v, i, shape)
        constant = as_operand(op, v, dtype)
        return lambda i: constant

    read_a, read_b = operand(a), operand(b)
    stretched = any(t.shape != shape for t in tensors)
    tag = tags.BROADCAST if stretched else tags.ELEMWISE
    return te.compute(shape, lambda *i: fn(read_a(i), read_b(i)), name=op, tag=tag)


def _float_binary(op: str, a: Operand, b: Operand, fn: Callable[[Expr, Expr], Expr]) -> Tensor:
    for arg, v in (("a", a), ("b", b)):
        if isinstance(v, Tensor) and v.dtype not in FLOAT_DTYPES:
            raise OpError(f"{op}: {arg} must be float32 or float64, got {v.dtype}")
    return _binary(op, a, b, fn)


def add(a: Operand, b: Operand) -> Tensor:
    """a + b with broadcasting. Example: `y = add(x, 1.0)`."""
    return _binary("add", a, b, lambda x, y: x + y)


def subtract(a: Operand, b: Operand) -> Tensor:
    """a - b with broadcasting. Example: `y = subtract(1.0, x)`."""
    return _binary("subtract", a, b, lambda x, y: x - y)


def multiply(a: Operand, b: Operand) -> Tensor:
    """a * b with broadcasting. Example: `y = multiply(x, scale)`."""
    return _binary("multiply", a, b, lambda x, y: x * y)


def divide(a: Operand, b: Operand) -> Tensor:
    """a / b with broadcasting: float division, or integer division rounded toward zero
    (C, ONNX Div) on integer tensors. Example: `y = divide(x, 2.0)`."""
    tensors = [v for v in (a, b) if isinstance(v, Tensor)]
    if tensors and tensors[0].dtype in INT_DTYPES:
        return _binary("divide", a, b, trunc_div)
    return _float_binary("divide", a, b, lambda x, y: x / y)


def power(a: Operand, b: Operand) -> Tensor:
    """a ** b with broadcasting; an integer tensor operand makes it `int_power` (computed in
    float64, the result of a's dtype, like ONNX Pow). Example: `y = power(x, 2.0)`."""
    if any(isinstance(v, Tensor) and v.dtype in INT_DTYPES for v in (a, b)):
        return int_power(a, b)
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and float(b) in SMALL_POWERS:
        n = int(b)  # GPT-2's GELU: x ** 3
        return _float_binary("power", a, b, lambda x, _: _product(x, n))
    return _float_binary("power", a, b, te.power)


SMALL_POWERS = (1.0, 2.0, 3.0, 4.0)  # as products: a vector pow is a libm call per lane


def _product(x: Expr, n: int) -> Expr:
    """x ** n as n - 1 multiplies."""
    out = x
    for _ in range(n - 1):
        out = out * x
    return out


def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise max with broadcasting. Example: `y = maximum(x, 0.0)`."""
    return _binary("maximum", a, b, te.max_expr)


def minimum(a: Operand, b: Operand) -> Tensor:
    """Elementwise min with broadcasting. Example: `y = minimum(x, y)`."""
    return _binary("minimum", a, b, te.min_expr)
