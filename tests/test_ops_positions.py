"""Position ops, rounding, remaps that repeat, einsum, quantization and resize: the reference
interpreter and the compiled default schedule against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from test_ops_logic import check, values

from compiler import ops

RNG = np.random.default_rng(5)


@pytest.mark.parametrize(
    "axis,keepdims,last", [(0, True, False), (1, False, True), (-1, True, True)]
)
def test_argmax_and_argmin_with_ties(axis, keepdims, last):
    x = RNG.integers(0, 3, (4, 6, 5)).astype(np.float32)  # many ties
    for op, ref in ((ops.argmax, np.argmax), (ops.argmin, np.argmin)):
        want = ref(np.flip(x, axis), axis=axis) if last else ref(x, axis=axis)
        if last:
            want = x.shape[axis] - 1 - want
        want = np.expand_dims(want, axis) if keepdims else want
        check(lambda t, op=op: op(t, axis=axis, keepdims=keepdims, last=last), [x],
              want.astype(np.int64))  # fmt: skip


@pytest.mark.parametrize("exclusive,reverse", [(False, False), (True, False), (False, True),
                                               (True, True)])  # fmt: skip
def test_cumsum(exclusive, reverse):
    x = values((3, 7), "int64")
    y = np.flip(x, 1) if reverse else x
    want = np.cumsum(y, axis=1) - (y if exclusive else 0)
    want = np.flip(want, 1) if reverse else want
    check(lambda t: ops.cumsum(t, axis=1, exclusive=exclusive, reverse=reverse), [x], want)


@pytest.mark.parametrize("k,upper", [(0, True), (1, False), (-2, True)])
def test_trilu(k, upper):
    x = values((2, 4, 6), "float32")
    want = np.triu(x, k) if upper else np.tril(x, k)
    check(lambda t: ops.trilu(t, k, upper), [x], want)


def test_one_hot_isnan_isinf():
    ids = np.array([[0, 3, -1, 2]], np.int64)
    check(lambda t: ops.one_hot(t, 4, 0.0, 1.0), [ids], np.eye(4, dtype=np.float32)[ids])
    x = np.array([[1.0, np.nan, np.inf, -np.inf, 0.0]], np.float32)
    check(ops.isnan, [x], np.isnan(x))
    check(lambda t: ops.isinf(t, negative=False), [x], np.isposinf(x))


def test_rounding_and_sign():
    x = np.array([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6]], np.float32)
    check(ops.round_half_even, [x], np.round(x))
    check(ops.floor, [x], np.floor(x))
    check(ops.ceil, [x], np.ceil(x))
    check(ops.sign, [x], np.sign(x))
    check(ops.sign, [x.astype(np.int32)], np.sign(x.astype(np.int32)))


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
def test_mod_and_integer_division(dtype):
    a = np.array([[-7, 7, -7, 7, 5, 0, 9, -9]], dtype)
    b = np.array([[3, -3, -3, 3, 2, 4, 2, 4]], dtype)
    check(ops.mod, [a, b], np.mod(a, b))
    check(lambda x, y: ops.mod(x, y, fmod=True), [a, b], np.fmod(a, b))
    if dtype != "float32":
        check(ops.divide, [a, b], np.trunc(a / b).astype(dtype))


def test_integer_division_by_zero_does_not_trap():
    """ONNX leaves it undefined; x86 would kill the process: the quotient is 0."""
    a, b = np.array([[5, -5, 0]], np.int32), np.zeros((1, 3), np.int32)
    check(ops.divide, [a, b], np.zeros((1, 3), np.int32))
    check(ops.mod, [a, b], a % np.ones_like(b))


def test_tile_broadcast_and_edge_pads():
    x = values((2, 3), "int32")
    check(lambda t: ops.tile(t, (2, 3)), [x], np.tile(x, (2, 3)))
    for mode, np_mode in (("edge", "edge"), ("reflect", "reflect"), ("wrap", "wrap")):
        want = np.pad(x, ((1, 1), (2, 1)), mode=np_mode)
        check(lambda t, m=mode: ops.edge_pad(t, (1, 2), (1, 1), m), [x], want)


@pytest.mark.parametrize(
    "equation,shapes",
    [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
     ("ii->i", [(4, 4)]), ("ij->", [(3, 4)]), ("...ij->...ji", [(2, 3, 4)]),
     ("ij,ij", [(3, 4), (3, 4)])],
)  # fmt: skip
def test_einsum(equation, shapes):
    arrays = [values(s, "float32") for s in shapes]
    check(lambda *t: ops.einsum(*t, equation=equation), arrays,
          np.einsum(equation, *arrays).astype(np.float32))  # fmt: skip


def test_quantize_and_dequantize_per_axis():
    x = values((2, 3, 4), "float32") * np.float32(3.1)
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    zero = np.array([3, 128, 250], np.uint8)
    q = np.clip(np.round(x / scale[:, None]) + zero[:, None], 0, 255).astype(np.uint8)
    check(lambda t, s, z: ops.quantize_linear(t, s, z, axis=1), [x, scale, zero], q)
    deq = (q.astype(np.float32) - zero[:, None]) * scale[:, None]
    check(lambda t, s, z: ops.dequantize_linear(t, s, z, axis=1), [q, scale, zero], deq)


def test_resize_by_tap_tables():
    """A 2x linear upsample of the last axis: taps (i // 2, i // 2 + 1) with weights."""
    x = values((1, 2, 3, 4), "float32")
    idx = np.array([[max(0, (i - 1) // 2), min(3, (i + 1) // 2)] for i in range(8)], np.int32)
    pos = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    w1 = (pos - idx[:, 0]).astype(np.float32)
    w = np.stack([1 - w1, w1], axis=1).astype(np.float32)
    want = (x[..., idx[:, 0]] * w[:, 0] + x[..., idx[:, 1]] * w[:, 1]).astype(np.float32)
    got_ok = [x, idx, w]
    check(lambda t, i, ww: ops.resize(t, i, ww, axes=(3,)), got_ok, want)
