"""Code generation of selects: the unselected branch's loads are never performed
(padding reads), masked vector loads, selects without loads; against numpy."""

import numpy as np
import pytest
from codegen_helpers import SERIAL, UNROLLED, VECTORIZED, close, rand, run, zeros

from compiler.lower.loop_ir import Buffer, For, Load, PrimFunc, Store, seq
from compiler.te.constructors import equal, logical_and, max_expr, min_expr, select
from compiler.te.expr import FloatImm, IntImm, Var

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
