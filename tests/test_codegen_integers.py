"""Code generation of integer arithmetic: floor division and modulo of negative numbers,
casts between dtypes, an index loaded from an int buffer; against numpy."""

import numpy as np
import pytest
from codegen_helpers import RNG, SERIAL, VECTORIZED, close, rand, run, zeros

from compiler.lower.loop_ir import Buffer, For, Load, PrimFunc, Store, seq
from compiler.runtime import aligned
from compiler.te.constructors import cast, select
from compiler.te.expr import Cast, FloatImm, Var


@pytest.mark.parametrize("kind", [SERIAL, VECTORIZED])
@pytest.mark.parametrize("divisor", [3, 4, -3, -4, 1, 7])
def test_floor_div_and_mod_of_negative_numbers(kind, divisor):
    n = 40
    out = Buffer("out", (2, n), "int32")
    i = Var("i")
    x = i - 17
    body = For(i, n, kind, seq(Store(out, i, x // divisor), Store(out, n + i, x % divisor)))
    o = zeros(2, n, dtype="int32")
    run(PrimFunc(f"divmod_{kind.value}_{divisor}".replace("-", "m"), (out,), body), o)
    xs = np.arange(n) - 17
    np.testing.assert_array_equal(o[0], xs // divisor)
    np.testing.assert_array_equal(o[1], xs % divisor)


@pytest.mark.parametrize("kind", [SERIAL, VECTORIZED])
def test_floor_div_and_mod_by_variables(kind):
    n, m = 16, 5
    out = Buffer("out", (2, m, n), "int64")
    i, d = Var("i"), Var("d")
    x = i - 8
    y = select(d < 2, d - 2, d - 1)  # -2, -1, 1, 2, 3: never zero
    y64, x64 = cast("int64", y), cast("int64", x)
    body = For(
        d,
        m,
        SERIAL,
        For(
            i,
            n,
            kind,
            seq(Store(out, d * n + i, x64 // y64), Store(out, (m + d) * n + i, x64 % y64)),
        ),
    )
    o = zeros(2, m, n, dtype="int64")
    run(PrimFunc(f"divmod_var_{kind.value}", (out,), body), o)
    xs, ys = np.arange(n)[None, :] - 8, np.array([-2, -1, 1, 2, 3])[:, None]
    np.testing.assert_array_equal(o[0], xs // ys)
    np.testing.assert_array_equal(o[1], xs % ys)


def test_casts_between_dtypes():
    n = 24
    X = Buffer("X", (n,))
    I32, I64, F64 = (
        Buffer("I32", (n,), "int32"),
        Buffer("I64", (n,), "int64"),
        Buffer("F64", (n,), "float64"),
    )
    out = Buffer("out", (3, n))
    i = Var("i")
    x = Load(X, i) * 10.0
    body = For(
        i,
        n,
        VECTORIZED,
        seq(
            Store(I32, i, cast("int32", x)),
            Store(I64, i, cast("int64", Load(I32, i)) * 3),
            Store(F64, i, cast("float64", x) * FloatImm(0.5, "float64")),
            Store(out, i, cast("float32", Load(I64, i))),
            Store(out, n + i, cast("float32", Load(F64, i))),
            Store(out, 2 * n + i, cast("float32", x > 0.0)),
        ),
    )
    x_np = rand(n)
    i32, i64, f64, o = (
        zeros(n, dtype="int32"),
        zeros(n, dtype="int64"),
        zeros(n, dtype="float64"),
        zeros(3, n),
    )
    run(PrimFunc("casts", (X, I32, I64, F64, out), body), x_np, i32, i64, f64, o)
    xs = x_np * np.float32(10)
    np.testing.assert_array_equal(i32, xs.astype(np.int32))
    np.testing.assert_array_equal(i64, xs.astype(np.int32).astype(np.int64) * 3)
    close(f64, xs.astype(np.float64) * 0.5)
    close(o[0], i64.astype(np.float32))
    close(o[1], f64.astype(np.float32))
    close(o[2], (xs > 0).astype(np.float32))


def test_int_index_loaded_from_a_buffer():
    """A gather through an int32 index buffer (embedding lookup)."""
    n, v = 18, 50
    table, ids, out = Buffer("table", (v,)), Buffer("ids", (n,), "int32"), Buffer("out", (n,))
    i = Var("i")
    body = For(i, n, VECTORIZED, Store(out, i, Load(table, Cast("int64", Load(ids, i)))))
    tab, idx, o = rand(v), aligned(RNG.integers(0, v, n).astype(np.int32)), zeros(n)
    run(PrimFunc("embed", (table, ids, out), body), tab, idx, o)
    close(o, tab[idx])
