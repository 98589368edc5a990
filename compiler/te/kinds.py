"""The vocabulary of expressions: dtypes and the kinds of operators, math functions,
reductions and axes that the expression nodes of `compiler.te.expr` carry."""

from __future__ import annotations

import enum

FLOAT_DTYPES = ("float32", "float64")
# int8 ... uint32: data (quantized tensors, masks); every integer computes as an int64
INT_DTYPES = ("int32", "int64", "int8", "uint8", "int16", "uint16", "uint32")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)


class BinOpKind(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"  # float division
    FLOORDIV = "//"  # integer floor division
    FLOORMOD = "%"  # integer floor modulo (sign of the divisor)
    MIN = "min"
    MAX = "max"
    AND = "&&"
    OR = "||"


class CmpKind(enum.Enum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="


class MathFunc(enum.Enum):
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    RSQRT = "rsqrt"
    TANH = "tanh"
    ERF = "erf"
    SIGMOID = "sigmoid"
    POW = "pow"
    ABS = "fabs"
    FLOOR = "floor"
    CEIL = "ceil"
    # trigonometric and hyperbolic functions (libm, lane by lane in vectors)
    SIN = "sin"
    COS = "cos"
    TAN = "tan"
    ASIN = "asin"
    ACOS = "acos"
    ATAN = "atan"
    SINH = "sinh"
    COSH = "cosh"
    ASINH = "asinh"
    ACOSH = "acosh"
    ATANH = "atanh"


class ReduceKind(enum.Enum):
    SUM = "sum"
    MAX = "max"
    MIN = "min"


class IterKind(enum.Enum):
    SPATIAL = "spatial"
    REDUCE = "reduce"
