"""Code generation: hand-written loop IR, compiled for the host CPU, against numpy."""

import math

import numpy as np
import pytest

from compiler.codegen import build, llvm_ir
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    ForKind,
    IfThenElse,
    Load,
    PrimFunc,
    Scope,
    Store,
    seq,
)
from compiler.runtime import aligned, load, num_threads
from compiler.te.expr import (
    Cast,
    FloatImm,
    IntImm,
    MathFunc,
    Var,
    cast,
    equal,
    erf,
    exp,
    fabs,
    logical_and,
    max_expr,
    min_expr,
    power,
    rsqrt,
    select,
    sigmoid,
    sqrt,
)
from compiler.te.expr import ceil as ceil_
from compiler.te.expr import floor as floor_
from compiler.te.expr import log as log_
from compiler.te.expr import tanh as tanh_

SERIAL, PARALLEL = ForKind.SERIAL, ForKind.PARALLEL
VECTORIZED, UNROLLED = ForKind.VECTORIZED, ForKind.UNROLLED
KINDS = [SERIAL, UNROLLED, VECTORIZED, PARALLEL]
RNG = np.random.default_rng(0)


def run(func: PrimFunc, *arrays: np.ndarray) -> None:
    load(build(func))(*arrays)


def rand(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return aligned(RNG.uniform(low, high, size=shape).astype(np.float32))


def zeros(*shape: int, dtype: str = "float32") -> np.ndarray:
    return aligned(np.zeros(shape, dtype=dtype))


def close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-5) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)


# ------------------------------------------------------------------ elementwise and loops


@pytest.mark.parametrize("kind", KINDS)
def test_broadcast_add_fused_index(kind):
    """C[i, j] = A[i, j] + B[j] over one fused loop: B's index is f % N (a gather when SIMD)."""
    m, n = 5, 12
    A, B, C = Buffer("A", (m, n)), Buffer("B", (n,)), Buffer("C", (m, n))
    f = Var("f")
    body = For(f, m * n, kind, Store(C, f, Load(A, f) + Load(B, f % n)))
    a, b, c = rand(m, n), rand(n), zeros(m, n)
    run(PrimFunc("bcast_add", (A, B, C), body), a, b, c)
    close(c, a + b)


@pytest.mark.parametrize("outer", KINDS)
@pytest.mark.parametrize("inner", KINDS)
def test_loop_kind_combinations(outer, inner):
    m, n = 6, 20
    A, B, C = Buffer("A", (m, n)), Buffer("B", (m,)), Buffer("C", (m, n))
    i, j = Var("i"), Var("j")
    value = Load(A, i * n + j) * Load(B, i) + FloatImm(1.0)
    body = For(i, m, outer, For(j, n, inner, Store(C, i * n + j, value)))
    a, b, c = rand(m, n), rand(m), zeros(m, n)
    run(PrimFunc("combo", (A, B, C), body), a, b, c)
    close(c, a * b[:, None] + 1.0)


@pytest.mark.parametrize("lanes", [7, 16, 33, 48])
def test_odd_vector_width_accumulates_across_a_loop(lanes):
    """out[j] = sum_k X[k, j] with a vector accumulator that lives across the k loop."""
    k_ext = 9
    X, out = Buffer("X", (k_ext, lanes)), Buffer("out", (lanes,))
    acc = Buffer("acc", (lanes,), scope=Scope.LOCAL)
    k, j = Var("k"), Var("j")
    body = Allocate(
        acc,
        seq(
            For(j, lanes, VECTORIZED, Store(acc, j, FloatImm(0.0))),
            For(
                k,
                k_ext,
                SERIAL,
                For(j, lanes, VECTORIZED, Store(acc, j, Load(acc, j) + Load(X, k * lanes + j))),
            ),
            For(j, lanes, VECTORIZED, Store(out, j, Load(acc, j))),
        ),
    )
    x, o = rand(k_ext, lanes), zeros(lanes)
    run(PrimFunc(f"colsum{lanes}", (X, out), body), x, o)
    close(o, x.sum(axis=0))


@pytest.mark.parametrize("kind", [VECTORIZED, SERIAL])
def test_strided_gather_and_scatter(kind):
    n = 19
    A, C, D = Buffer("A", (3 * n + 1,)), Buffer("C", (n,)), Buffer("D", (2 * n,))
    j = Var("j")
    body = seq(
        For(j, n, kind, Store(C, j, Load(A, j * 3 + 1))),
        For(j, n, kind, Store(D, j * 2, Load(A, (n - 1 - j)))),  # reversed read: coef -1
        For(j, n, kind, Store(D, j * 2 + 1, FloatImm(5.0))),
    )
    a, c, d = rand(3 * n + 1), zeros(n), zeros(2 * n)
    run(PrimFunc("strided", (A, C, D), body), a, c, d)
    close(c, a[1::3][:n])
    close(d[0::2], a[:n][::-1])
    close(d[1::2], np.full(n, 5.0, np.float32))


# ------------------------------------------------------------------ selects that guard loads


FAR = 1 << 40  # an element index no mapping covers: a load there would crash


@pytest.mark.parametrize("kind", [SERIAL, VECTORIZED, UNROLLED])
def test_padded_read_never_loads_the_unselected_branch(kind):
    """out[i] = i < n ? x[i] : 0 for i in 0..n+9, where the index is 2^40 past the end
    when not selected (non-affine: a masked gather in SIMD code)."""
    n = 21
    X, out = Buffer("X", (n,)), Buffer("out", (n + 9,))
    i = Var("i")
    far_index = i + (i // n) * IntImm(FAR, "int64").value
    body = For(i, n + 9, kind, Store(out, i, select(i < n, Load(X, far_index), FloatImm(-2.0))))
    x, o = rand(n), zeros(n + 9)
    run(PrimFunc("pad_far", (X, out), body), x, o)
    close(o, np.concatenate([x, np.full(9, -2.0, np.float32)]))


@pytest.mark.parametrize("kind", [SERIAL, VECTORIZED])
def test_padded_contiguous_read_is_masked(kind):
    """1-D zero padding: out[i] = 1 <= i <= n ? x[i-1] : 0 (a masked vector load)."""
    n = 30
    X, out = Buffer("X", (n,)), Buffer("out", (n + 2,))
    i = Var("i")
    inside = logical_and(i >= 1, i <= n)
    body = For(i, n + 2, kind, Store(out, i, select(inside, Load(X, i - 1) * 2.0, 0.0)))
    x, o = rand(n), zeros(n + 2)
    run(PrimFunc("pad1", (X, out), body), x, o)
    close(o, np.pad(x * 2, 1))


def test_padded_read_with_lane_invariant_condition():
    """A 2-D pad where the row test is scalar (a branch) and the column test a mask."""
    h, w = 4, 10
    X, out = Buffer("X", (h, w)), Buffer("out", (h + 2, w + 2))
    r, c = Var("r"), Var("c")
    far = (r // (h + 1)) * FAR  # far away exactly on the bottom padding row
    inside = logical_and(r >= 1, r <= h, c >= 1, c <= w)
    value = select(inside, Load(X, (r - 1) * w + c - 1 + far), FloatImm(0.0))
    body = For(r, h + 2, SERIAL, For(c, w + 2, VECTORIZED, Store(out, r * (w + 2) + c, value)))
    x, o = rand(h, w), zeros(h + 2, w + 2)
    run(PrimFunc("pad2", (X, out), body), x, o)
    close(o, np.pad(x, 1))


def test_select_without_loads_min_max_and_logic():
    n = 37
    X, out = Buffer("X", (n,)), Buffer("out", (4, n))
    i = Var("i")
    x_i = Load(X, i)
    body = For(
        i,
        n,
        VECTORIZED,
        seq(
            Store(out, i, select(x_i > 0.0, x_i, x_i * 0.1)),
            Store(out, n + i, max_expr(x_i, 0.0)),
            Store(out, 2 * n + i, min_expr(x_i, FloatImm(0.25))),
            Store(out, 3 * n + i, select(~(equal(i % 3, 0) | (x_i < 0.0)), 1.0, -1.0)),
        ),
    )
    x, o = rand(n), zeros(4, n)
    run(PrimFunc("sel", (X, out), body), x, o)
    idx = np.arange(n)
    close(o[0], np.where(x > 0, x, x * np.float32(0.1)))
    close(o[1], np.maximum(x, 0))
    close(o[2], np.minimum(x, 0.25))
    close(o[3], np.where(~((idx % 3 == 0) | (x < 0)), 1.0, -1.0).astype(np.float32))


# ------------------------------------------------------------------ integers


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


# ------------------------------------------------------------------ math


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


# ------------------------------------------------------------------ statements


def test_if_then_else_scalar_and_per_lane():
    """A branch on a lane-invariant condition inside SIMD code, and one on the vector
    variable itself (the loop then runs lane by lane)."""
    m, n = 4, 10
    X, out = Buffer("X", (m, n)), Buffer("out", (m, n))
    i, j = Var("i"), Var("j")
    row_branch = IfThenElse(
        equal(i % 2, 0),
        Store(out, i * n + j, Load(X, i * n + j)),
        Store(out, i * n + j, Load(X, i * n + j) * -1.0),
    )
    lane_branch = IfThenElse(j > 6, Store(out, i * n + j, FloatImm(7.0)))
    body = For(
        i, m, SERIAL, seq(For(j, n, VECTORIZED, row_branch), For(j, n, VECTORIZED, lane_branch))
    )
    x, o = rand(m, n), zeros(m, n)
    run(PrimFunc("ifs", (X, out), body), x, o)
    want = np.where((np.arange(m) % 2 == 0)[:, None], x, -x)
    want[:, 7:] = 7.0
    close(o, want)


def test_reduction_into_one_element_inside_a_vectorized_loop():
    """s += x[j] over a VECTORIZED j is a cross-lane dependence: it must run lane by lane."""
    n = 23
    X, S = Buffer("X", (n,)), Buffer("S", (1,))
    j = Var("j")
    body = seq(
        Store(S, IntImm(0), FloatImm(0.0)),
        For(j, n, VECTORIZED, Store(S, IntImm(0), Load(S, IntImm(0)) + Load(X, j))),
    )
    x, s = rand(n), zeros(1)
    run(PrimFunc("vred", (X, S), body), x, s)
    close(s, x.sum(keepdims=True), rtol=1e-5)


def test_local_accumulator_matmul():
    """A 4x16 register tile: acc zeroed, accumulated over k (UNROLLED i, VECTORIZED j), stored."""
    m, n, k_ext = 8, 32, 20
    A, B, C = Buffer("A", (m, k_ext)), Buffer("B", (k_ext, n)), Buffer("C", (m, n))
    acc = Buffer("acc", (4, 16), scope=Scope.LOCAL)
    io, jo, k, i, j = (Var(v) for v in ("io", "jo", "k", "i", "j"))

    def tile(stmt):
        return For(i, 4, UNROLLED, For(j, 16, VECTORIZED, stmt))

    row, col = io * 4 + i, jo * 16 + j
    update = Load(acc, i * 16 + j) + Load(A, row * k_ext + k) * Load(B, k * n + col)
    body = For(
        io,
        m // 4,
        SERIAL,
        For(
            jo,
            n // 16,
            SERIAL,
            Allocate(
                acc,
                seq(
                    tile(Store(acc, i * 16 + j, FloatImm(0.0))),
                    For(k, k_ext, SERIAL, tile(Store(acc, i * 16 + j, update))),
                    tile(Store(C, row * n + col, Load(acc, i * 16 + j))),
                ),
            ),
        ),
    )
    a, b, c = rand(m, k_ext), rand(k_ext, n), zeros(m, n)
    func = PrimFunc("tile_mm", (A, B, C), body)
    run(func, a, b, c)
    close(c, a @ b, rtol=1e-5)
    assert "alloca [64 x float]" in llvm_ir(func)
    assert "alloca" not in llvm_ir(func, optimized=True)  # promoted to registers


@pytest.mark.parametrize("threads", [1, 2])
def test_parallel_loop_with_per_thread_scratch(threads):
    m, n = 13, 16
    X, out = Buffer("X", (m, n)), Buffer("out", (m, n))
    t = Buffer("t", (n,), scope=Scope.LOCAL)
    i, j = Var("i"), Var("j")
    body = For(
        i,
        m,
        PARALLEL,
        Allocate(
            t,
            seq(
                For(j, n, VECTORIZED, Store(t, j, Load(X, i * n + j) * 2.0)),
                For(j, n, SERIAL, Store(out, i * n + j, Load(t, n - 1 - j) + cast("float32", i))),
            ),
        ),
    )
    x, o = rand(m, n), zeros(m, n)
    with num_threads(threads):
        run(PrimFunc("par_scratch", (X, out), body), x, o)
    close(o, 2 * x[:, ::-1] + np.arange(m, dtype=np.float32)[:, None])


def test_nested_parallel_and_heap_allocation():
    """A parallel loop inside a parallel loop runs serially; a GLOBAL buffer is malloc'ed."""
    m, n = 6, 8
    X, out = Buffer("X", (m, n)), Buffer("out", (m, n))
    tmp = Buffer("tmp", (m, n))  # GLOBAL scope: heap
    i, j = Var("i"), Var("j")
    body = Allocate(
        tmp,
        seq(
            For(
                i, m, PARALLEL, For(j, n, PARALLEL, Store(tmp, i * n + j, Load(X, i * n + j) + 1.0))
            ),
            For(
                i,
                m,
                PARALLEL,
                For(j, n, VECTORIZED, Store(out, i * n + j, Load(tmp, i * n + j) * 3.0)),
            ),
        ),
    )
    x, o = rand(m, n), zeros(m, n)
    func = PrimFunc("nested_par", (X, out), body)
    with num_threads(2):
        run(func, x, o)
    close(o, (x + 1) * 3)
    text = llvm_ir(func)
    assert text.count('call void @"GOMP_parallel"') == 2  # the two outer loops only
    assert '@"aligned_alloc"' in text and '@"free"' in text


def test_single_iteration_loops_and_empty_loops():
    X, out = Buffer("X", (3,)), Buffer("out", (3,))
    i, u = Var("i"), Var("u")
    body = seq(
        For(u, 1, PARALLEL, For(i, 3, VECTORIZED, Store(out, i + u, Load(X, i) + 1.0))),
        For(u, 0, SERIAL, Store(out, u, FloatImm(99.0))),
    )
    x, o = rand(3), zeros(3)
    run(PrimFunc("tiny", (X, out), body), x, o)
    close(o, x + 1)


def test_int_index_loaded_from_a_buffer():
    """A gather through an int32 index buffer (embedding lookup)."""
    n, v = 18, 50
    table, ids, out = Buffer("table", (v,)), Buffer("ids", (n,), "int32"), Buffer("out", (n,))
    i = Var("i")
    body = For(i, n, VECTORIZED, Store(out, i, Load(table, Cast("int64", Load(ids, i)))))
    tab, idx, o = rand(v), aligned(RNG.integers(0, v, n).astype(np.int32)), zeros(n)
    run(PrimFunc("embed", (table, ids, out), body), tab, idx, o)
    close(o, tab[idx])


@pytest.mark.parametrize("n", [130, 1000])
def test_wide_vectorized_loop_is_strip_mined(n):
    """Wider than 8 registers: a serial loop of register-wide vector loops plus a tail."""
    X, Y = Buffer("X", (2, n)), Buffer("Y", (2, n))
    i, j = Var("i"), Var("j")
    value = exp(Load(X, i * n + j)) + Load(X, i * n + (n - 1) - j)
    body = For(i, 2, SERIAL, For(j, n, VECTORIZED, Store(Y, i * n + j, value)))
    func = PrimFunc(f"wide{n}", (X, Y), body)
    x, y = rand(2, n), zeros(2, n)
    run(func, x, y)
    close(y, np.exp(x) + x[:, ::-1])
    assert "j.outer" in llvm_ir(func)


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
