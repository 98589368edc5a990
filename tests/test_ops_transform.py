"""Index-remapping ops (transpose, reshape, flatten, squeeze, expand_dims, concat, slice)."""

import numpy as np
import pytest

from compiler import ops, te
from compiler.ops import OpError
from compiler.te.evaluate import evaluate

RNG = np.random.default_rng(2)
INT_MAX = 2**63 - 1


def run_on(build, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(op output, input) for a random input of `shape`."""
    x = te.placeholder(shape, name="x")
    xv = RNG.standard_normal(shape).astype(np.float32)
    out = build(x)
    assert out.tag == "injective"
    return evaluate([out], {x: xv})[0], xv


@pytest.mark.parametrize(
    "shape,perm", [((3, 5), None), ((2, 3, 5, 7), (0, 2, 3, 1)), ((2, 3, 5), (-1, 0, 1))]
)
def test_transpose(shape, perm):
    got, xv = run_on(lambda x: ops.transpose(x, perm), shape)
    np.testing.assert_array_equal(got, np.transpose(xv, perm))


@pytest.mark.parametrize(
    "shape,newshape",
    [
        ((2, 3, 5), (6, 5)),
        ((2, 3, 5), (5, -1)),
        ((2, 3, 5), (0, 15)),
        ((2, 3, 5), (30,)),
        ((6, 35), (3, 7, 2, 5)),
        ((1, 7, 1), (7,)),
        ((13,), (1, 13, 1)),
        ((4, 9), (0, 3, -1)),
    ],
)
def test_reshape(shape, newshape):
    got, xv = run_on(lambda x: ops.reshape(x, newshape), shape)
    want_shape = [shape[k] if d == 0 else d for k, d in enumerate(newshape)]
    np.testing.assert_array_equal(got, xv.reshape(want_shape))


@pytest.mark.parametrize("shape,axis", [((2, 3, 5), 1), ((2, 3, 5), 0), ((2, 3, 5), 3), ((7,), -1)])
def test_flatten(shape, axis):
    got, xv = run_on(lambda x: ops.flatten(x, axis), shape)
    ax = axis + len(shape) if axis < 0 else axis  # ONNX Flatten: r + axis
    np.testing.assert_array_equal(got, xv.reshape(int(np.prod(shape[:ax])), -1))


def test_squeeze_and_expand_dims():
    got, xv = run_on(lambda x: ops.squeeze(x), (1, 3, 1, 5))
    np.testing.assert_array_equal(got, xv.reshape(3, 5))
    got, xv = run_on(lambda x: ops.squeeze(x, axes=-2), (1, 3, 1, 5))
    np.testing.assert_array_equal(got, xv.reshape(1, 3, 5))
    got, xv = run_on(lambda x: ops.expand_dims(x, (0, -1)), (3, 5))
    np.testing.assert_array_equal(got, xv.reshape(1, 3, 5, 1))
    got, xv = run_on(lambda x: ops.expand_dims(x, 1), (3, 5))
    np.testing.assert_array_equal(got, xv.reshape(3, 1, 5))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(d + q * (k == axis % 3) for k, d in enumerate(s)) for q, s in enumerate(shapes)]
    xs = [te.placeholder(s, name=f"x{q}") for q, s in enumerate(shapes)]
    vals = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    (got,) = evaluate([ops.concat(xs, axis)], dict(zip(xs, vals)))
    np.testing.assert_array_equal(got, np.concatenate(vals, axis))


def test_concat_single_tensor():
    got, xv = run_on(lambda x: ops.concat([x], 1), (2, 3))
    np.testing.assert_array_equal(got, xv)


@pytest.mark.parametrize(
    "starts,ends,axes,steps",
    [
        ([1], [4], [1], None),
        ([0, 1], [INT_MAX, -1], None, [2, 3]),
        ([-1], [-INT_MAX], [0], [-1]),
        ([5, -2], [1, -100], [2, 0], [-2, -1]),
        ([-100], [100], [-1], [1]),
        ([10], [2], [2], [-3]),
    ],
)
def test_slice_matches_python_slicing_after_onnx_clamping(starts, ends, axes, steps):
    shape = (5, 7, 11)
    got, xv = run_on(lambda x: ops.slice(x, starts, ends, axes, steps), shape)
    index = [slice(None)] * 3
    for k, (s, e, st) in enumerate(zip(starts, ends, steps or [1] * len(starts))):
        a = (axes or range(len(starts)))[k] % 3
        index[a] = slice(s, None if e <= -INT_MAX else e, st)
    np.testing.assert_array_equal(got, xv[tuple(index)])


def test_transform_errors():
    x = te.placeholder((2, 3, 5), name="x")
    with pytest.raises(OpError, match=r"transpose: perm \[0, 0, 1\] is not a permutation"):
        ops.transpose(x, (0, 0, 1))
    with pytest.raises(OpError, match=r"reshape: cannot reshape \(2, 3, 5\) \(30 elements\)"):
        ops.reshape(x, (4, -1))
    with pytest.raises(OpError, match=r"reshape: invalid new shape \[-1, -1\]"):
        ops.reshape(x, (-1, -1))
    with pytest.raises(OpError, match=r"squeeze: axis 1 of shape \(2, 3, 5\) has extent != 1"):
        ops.squeeze(x, 1)
    with pytest.raises(OpError, match="concat: tensors\\[1\\] has shape \\(2, 4, 5\\)"):
        ops.concat([x, te.placeholder((2, 4, 5))], axis=0)
    with pytest.raises(OpError, match="slice: axis 1 of extent 3 is empty"):
        ops.slice(x, [2], [1], [1])
    with pytest.raises(OpError, match="slice: axis 0: .* step != 0"):
        ops.slice(x, [0], [1], [0], [0])
    with pytest.raises(OpError, match="flatten: axis 4 is out of range"):
        ops.flatten(x, 4)
    with pytest.raises(OpError, match="expand_dims: axes 4 is out of range for a 4-D tensor"):
        ops.expand_dims(x, 4)
