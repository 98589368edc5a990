"""A slow, obviously-correct interpreter of the loop IR (for tests without LLVM).

Loop kinds are ignored (every loop runs serially); Selects evaluate only the
chosen branch, like generated code must.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.lower.loop_ir import Allocate, For, IfThenElse, Load, PrimFunc, Seq, Stmt, Store
from compiler.te.expr import BinOp, Call, Cast, Cmp, Expr, FloatImm, IntImm, Not, Select, Var
from compiler.te.kinds import BinOpKind, CmpKind, MathFunc

_BIN = {
    BinOpKind.ADD: lambda a, b: a + b,
    BinOpKind.SUB: lambda a, b: a - b,
    BinOpKind.MUL: lambda a, b: a * b,
    BinOpKind.DIV: lambda a, b: a / b,
    BinOpKind.FLOORDIV: lambda a, b: a // b,
    BinOpKind.FLOORMOD: lambda a, b: a % b,
    BinOpKind.MIN: lambda a, b: min(a, b),
    BinOpKind.MAX: lambda a, b: max(a, b),
    BinOpKind.AND: lambda a, b: a and b,
    BinOpKind.OR: lambda a, b: a or b,
}
_CMP = {
    CmpKind.LT: lambda a, b: a < b,
    CmpKind.LE: lambda a, b: a <= b,
    CmpKind.GT: lambda a, b: a > b,
    CmpKind.GE: lambda a, b: a >= b,
    CmpKind.EQ: lambda a, b: a == b,
    CmpKind.NE: lambda a, b: a != b,
}
_MATH = {
    MathFunc.EXP: math.exp,
    MathFunc.LOG: math.log,
    MathFunc.SQRT: math.sqrt,
    MathFunc.RSQRT: lambda x: 1.0 / math.sqrt(x),
    MathFunc.TANH: math.tanh,
    MathFunc.ERF: math.erf,
    MathFunc.SIGMOID: lambda x: 1.0 / (1.0 + math.exp(-x)),
    MathFunc.POW: math.pow,
    MathFunc.ABS: abs,
    MathFunc.FLOOR: math.floor,
    MathFunc.CEIL: math.ceil,
    MathFunc.SIN: math.sin,
    MathFunc.COS: math.cos,
    MathFunc.TAN: math.tan,
    MathFunc.ASIN: math.asin,
    MathFunc.ACOS: math.acos,
    MathFunc.ATAN: math.atan,
    MathFunc.SINH: math.sinh,
    MathFunc.COSH: math.cosh,
    MathFunc.ASINH: math.asinh,
    MathFunc.ACOSH: math.acosh,
    MathFunc.ATANH: math.atanh,
}


def run(func: PrimFunc, *arrays: np.ndarray) -> None:
    """Execute `func` on flat views of `arrays` (written in place)."""
    mem = {id(b): a.reshape(-1) for b, a in zip(func.params, arrays)}
    _exec(func.body, {}, mem)


def _exec(s: Stmt, env: dict[Var, int], mem: dict[int, np.ndarray]) -> None:
    match s:
        case For(var, extent, _, body):
            for i in range(extent):
                env[var] = i
                _exec(body, env, mem)
            env.pop(var, None)
        case Seq(stmts):
            for x in stmts:
                _exec(x, env, mem)
        case Store(buf, index, value):
            i = int(_eval(index, env, mem))
            if not 0 <= i < buf.size:
                raise IndexError(f"store to {buf.name}[{i}] outside 0..{buf.size - 1}")
            mem[id(buf)][i] = _eval(value, env, mem)
        case IfThenElse(cond, then_case, else_case):
            if _eval(cond, env, mem):
                _exec(then_case, env, mem)
            elif else_case is not None:
                _exec(else_case, env, mem)
        case Allocate(buf, body):
            mem[id(buf)] = np.full(buf.size, np.nan, dtype=buf.dtype)
            _exec(body, env, mem)
        case _:
            raise TypeError(f"not a statement: {s!r}")


def _eval(e: Expr, env: dict[Var, int], mem: dict[int, np.ndarray]):
    match e:
        case IntImm(v, t):
            return bool(v) if t == "bool" else v
        case FloatImm(v, t):
            return np.dtype(t).type(v)
        case Var():
            return env[e]
        case Load(buf, index):
            i = int(_eval(index, env, mem))
            if not 0 <= i < buf.size:
                raise IndexError(f"load from {buf.name}[{i}] outside 0..{buf.size - 1}")
            return mem[id(buf)][i]
        case BinOp(op, a, b):
            x, y = _eval(a, env, mem), _eval(b, env, mem)
            return _BIN[op](x, y)
        case Cmp(op, a, b):
            return _CMP[op](_eval(a, env, mem), _eval(b, env, mem))
        case Not(a):
            return not _eval(a, env, mem)
        case Select(c, t, f):
            return _eval(t, env, mem) if _eval(c, env, mem) else _eval(f, env, mem)
        case Cast(t, a):
            v = _eval(a, env, mem)
            return np.dtype(t).type(v) if t != "bool" else bool(v)
        case Call(f, args):
            vals = [float(_eval(a, env, mem)) for a in args]
            return np.float32(_MATH[f](*vals))
    raise TypeError(f"cannot interpret {e!r}")
