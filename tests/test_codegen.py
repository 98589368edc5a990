"""Code generation: hand-written loop IR, compiled for the host CPU, against numpy.

Loops of every kind and statements (branches, local and heap buffers, parallel
regions) here; selects, integer arithmetic and math functions in
test_codegen_selects.py, test_codegen_integers.py and test_codegen_math.py.
"""

import numpy as np
import pytest
from codegen_helpers import KINDS, PARALLEL, SERIAL, UNROLLED, VECTORIZED, close, rand, run, zeros

from compiler.codegen import llvm_ir
from compiler.lower.loop_ir import (
    Allocate,
    Buffer,
    For,
    IfThenElse,
    Load,
    PrimFunc,
    Scope,
    Store,
    seq,
)
from compiler.runtime import num_threads
from compiler.te.constructors import cast, equal, exp
from compiler.te.expr import FloatImm, IntImm, Var

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
    assert text.count('call void @"st_parallel_for"') == 2  # the two outer loops only
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
