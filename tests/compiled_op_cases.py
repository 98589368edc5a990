"""The op cases compiled by test_compiled_ops.py and test_compiled_op_variants.py: every
op of the op library on small shapes, each with its numpy reference (`CASES`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from test_ops import BINARY, POSITIVE_UNARY, UNARY
from test_ops_nn import CONV_CASES, POOL_CASES, conv_reference, pool_reference

from compiler import ops, te

Reference = Callable[..., np.ndarray]  # float64 inputs by placeholder name -> expected output


@dataclass(frozen=True)
class Case:
    """One op call: `make()` builds (output tensor, numpy reference) from fresh placeholders."""

    name: str
    make: Callable[[], tuple[te.Tensor, Reference]]
    low: float = -2.0
    high: float = 2.0
    rtol: float = 1e-5

    def __str__(self) -> str:
        return self.name


def ph(shape: tuple[int, ...], name: str) -> te.Tensor:
    return te.placeholder(shape, name=name)


def reduction_rtol(length: int) -> float:
    """1e-5, or 1e-4 for fp32 sums longer than 32 terms (rounding grows with length)."""
    return 1e-4 if length > 32 else 1e-5


# ---------------------------------------------------------------- linalg


def matmul_case(m: int, k: int, n: int, ta: bool = False, tb: bool = False) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        a, b = ph((k, m) if ta else (m, k), "A"), ph((n, k) if tb else (k, n), "B")
        return ops.matmul(a, b, ta, tb), lambda A, B: (A.T if ta else A) @ (B.T if tb else B)

    return Case(f"matmul_{m}x{k}x{n}{'_ta' * ta}{'_tb' * tb}", make, rtol=reduction_rtol(k))


def batch_matmul_case(sa: tuple[int, ...], sb: tuple[int, ...], tb: bool = False) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        out = ops.batch_matmul(ph(sa, "A"), ph(sb, "B"), transpose_b=tb)
        return out, lambda A, B: np.matmul(A, np.swapaxes(B, -1, -2) if tb else B)

    name = f"batch_matmul_{sa}x{sb}{'_tb' * tb}".replace(" ", "")
    return Case(name, make, rtol=reduction_rtol(sb[-1] if tb else sb[-2]))


def dense_case(batch: int, features: int, units: int, with_bias: bool) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        x, w, b = ph((batch, features), "X"), ph((units, features), "W"), ph((units,), "b")
        if with_bias:
            return ops.dense(x, w, b), lambda X, W, b: X @ W.T + b
        return ops.dense(x, w), lambda X, W: X @ W.T

    name = f"dense_{batch}x{features}x{units}{'_bias' * with_bias}"
    return Case(name, make, rtol=reduction_rtol(features))


LINALG = [
    matmul_case(5, 7, 3),
    matmul_case(5, 7, 3, ta=True),
    matmul_case(5, 7, 3, tb=True),
    matmul_case(5, 7, 3, ta=True, tb=True),
    matmul_case(1, 13, 11),
    matmul_case(9, 16, 12, tb=True),
    batch_matmul_case((3, 5, 7), (3, 7, 2)),
    batch_matmul_case((2, 1, 4, 3), (5, 3, 6)),
    batch_matmul_case((5, 3), (2, 1, 3, 4)),
    batch_matmul_case((2, 3, 5, 7), (2, 3, 11, 7), tb=True),
    dense_case(3, 11, 5, with_bias=True),
    dense_case(4, 9, 7, with_bias=False),
]


# -------------------------------------------------------------------- nn


def conv_case(
    dshape: tuple[int, ...],
    wshape: tuple[int, int, int],
    stride: tuple[int, int],
    padding: object,
    dilation: tuple[int, int],
    groups: int,
) -> Case:
    f, kh, kw = wshape

    def make() -> tuple[te.Tensor, Reference]:
        x, w = ph(dshape, "x"), ph((f, dshape[1] // groups, kh, kw), "w")
        out = ops.conv2d_nchw(x, w, stride, padding, dilation, groups)  # type: ignore[arg-type]
        return out, lambda x, w: conv_reference(x, w, stride, padding, dilation, groups)

    name = f"conv2d_{dshape}_{wshape}_s{stride}_p{padding}_d{dilation}_g{groups}"
    return Case(name.replace(" ", ""), make, rtol=reduction_rtol(dshape[1] // groups * kh * kw))


def conv_bias_relu_case() -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        x, w, b = ph((1, 2, 5, 6), "x"), ph((3, 2, 3, 3), "w"), ph((3,), "b")
        out = ops.relu(ops.bias_add(ops.conv2d_nchw(x, w, stride=2, padding=1), b))

        def ref(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
            conv = conv_reference(x, w, (2, 2), 1, (1, 1), 1)
            return np.maximum(conv + b[:, None, None], 0)

        return out, ref

    return Case("conv2d_bias_relu", make)


def depthwise_case(
    dshape: tuple[int, ...],
    multiplier: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: object,
    dilation: tuple[int, int],
) -> Case:
    channels = dshape[1]

    def make() -> tuple[te.Tensor, Reference]:
        x, w = ph(dshape, "x"), ph((channels * multiplier, 1) + kernel, "w")
        out = ops.depthwise_conv2d_nchw(x, w, stride, padding, dilation)  # type: ignore[arg-type]
        return out, lambda x, w: conv_reference(x, w, stride, padding, dilation, channels)

    name = f"depthwise_{dshape}_m{multiplier}_k{kernel}_s{stride}_p{padding}_d{dilation}"
    return Case(name.replace(" ", ""), make)


def pool_case(
    kind: str,
    dshape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: object,
    dilation: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool = False,
) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        x = ph(dshape, "x")
        args = (kernel, stride, padding, dilation, ceil_mode)
        if kind == "max":
            out = ops.max_pool2d(x, *args)  # type: ignore[arg-type]
        else:
            out = ops.avg_pool2d(x, *args, count_include_pad)  # type: ignore[arg-type]
        return out, lambda x: pool_reference(x, kind, *args, count_include_pad)

    flags = "_ceil" * ceil_mode + "_incpad" * count_include_pad
    name = f"{kind}_pool_{dshape}_k{kernel}_s{stride}_p{padding}_d{dilation}{flags}"
    return Case(name.replace(" ", ""), make)


def global_avg_pool_case(dshape: tuple[int, ...]) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        return ops.global_avg_pool2d(ph(dshape, "x")), lambda x: x.mean((2, 3), keepdims=True)

    return Case(f"global_avg_pool_{dshape}".replace(" ", ""), make)


NN = (
    [conv_case(*c) for c in (CONV_CASES[0], CONV_CASES[2], CONV_CASES[3], CONV_CASES[5])]
    + [conv_bias_relu_case()]
    + [
        depthwise_case((1, 5, 9, 9), 1, (3, 3), (1, 1), 1, (1, 1)),
        depthwise_case((2, 3, 10, 7), 2, (3, 5), (2, 1), (1, 2), (1, 1)),
        depthwise_case((1, 4, 11, 11), 3, (3, 3), (2, 2), 0, (2, 2)),
    ]
    + [pool_case("max", *POOL_CASES[k]) for k in (0, 3, 4, 6)]
    + [pool_case("avg", *POOL_CASES[k], count_include_pad=False) for k in (0, 5)]
    + [pool_case("avg", *POOL_CASES[k], count_include_pad=True) for k in (3, 4)]
    + [global_avg_pool_case((2, 3, 7, 5)), global_avg_pool_case((1, 5, 3, 3))]
)


# ----------------------------------------------------------- elementwise


def unary_case(name: str, shape: tuple[int, ...], positive: bool = False) -> Case:
    build_op, ref = (POSITIVE_UNARY if positive else UNARY)[name]

    def make() -> tuple[te.Tensor, Reference]:
        return build_op(ph(shape, "x")), lambda x: ref(x)

    low, high = (0.1, 9.0) if positive else (-5.0, 5.0)
    return Case(f"{name}_{shape}".replace(" ", ""), make, low=low, high=high)


def binary_case(name: str, sa: tuple[int, ...], sb: tuple[int, ...] | float) -> Case:
    build_op, ref = BINARY[name]

    def make() -> tuple[te.Tensor, Reference]:
        if isinstance(sb, float):
            return build_op(ph(sa, "a"), sb), lambda a: ref(a, sb)
        return build_op(ph(sa, "a"), ph(sb, "b")), lambda a, b: ref(a, b)

    return Case(f"{name}_{sa}_{sb}".replace(" ", ""), make, low=0.5, high=2.0)


ELEMENTWISE = (
    [unary_case(name, (3, 5, 7)) for name in sorted(UNARY)]
    + [unary_case(name, (2, 13), positive=True) for name in sorted(POSITIVE_UNARY)]
    + [binary_case(name, (3, 1, 5), (7, 1)) for name in sorted(BINARY)]
    + [binary_case("add", (4, 5), (4, 5)), binary_case("multiply", (6, 1, 1), (1, 5, 3))]
    + [binary_case("subtract", (3, 7), 1.5)]
)


# --------------------------------------------------- reductions and norms

REDUCERS = {
    "reduce_sum": (ops.reduce_sum, np.sum),
    "reduce_mean": (ops.reduce_mean, np.mean),
    "reduce_max": (ops.reduce_max, np.max),
    "reduce_min": (ops.reduce_min, np.min),
}


def reduce_case(name: str, shape: tuple[int, ...], axes: object, keepdims: bool) -> Case:
    build_op, ref = REDUCERS[name]
    np_axes = None if axes is None else tuple(np.atleast_1d(axes))  # type: ignore[call-overload]

    def make() -> tuple[te.Tensor, Reference]:
        out = build_op(ph(shape, "x"), axes, keepdims=keepdims)  # type: ignore[arg-type]
        return out, lambda x: np.asarray(ref(x, axis=np_axes, keepdims=keepdims))

    length = int(np.prod([shape[a] for a in np_axes or range(len(shape))]))
    name = f"{name}_{shape}_{axes}{'_keep' * keepdims}".replace(" ", "")
    return Case(name, make, rtol=reduction_rtol(length))


def softmax_case(shape: tuple[int, ...], axis: int) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        def ref(x: np.ndarray) -> np.ndarray:
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)

        return ops.softmax(ph(shape, "x"), axis), ref

    name = f"softmax_{shape}_{axis}".replace(" ", "")
    return Case(name, make, low=-10.0, high=10.0, rtol=reduction_rtol(shape[axis]))


def layer_norm_case(shape: tuple[int, ...], axis: int, with_beta: bool) -> Case:
    inner = shape[axis % len(shape) :]
    red = tuple(range(axis % len(shape), len(shape)))

    def make() -> tuple[te.Tensor, Reference]:
        x, gamma, beta = ph(shape, "x"), ph(inner, "gamma"), ph(inner, "beta")
        out = ops.layer_norm(x, gamma, beta if with_beta else None, axis=axis, eps=1e-5)

        def ref(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None = None) -> np.ndarray:
            mean, var = x.mean(axis=red, keepdims=True), x.var(axis=red, keepdims=True)
            y = (x - mean) / np.sqrt(var + 1e-5) * gamma
            return y if beta is None else y + beta

        return out, ref

    name = f"layer_norm_{shape}_{axis}{'_beta' * with_beta}".replace(" ", "")
    return Case(name, make, rtol=1e-4)


REDUCTIONS = (
    [reduce_case(name, (3, 5, 7), 1, False) for name in REDUCERS]
    + [reduce_case(name, (3, 5, 7), (0, -1), True) for name in REDUCERS]
    + [reduce_case(name, (13,), None, False) for name in ("reduce_sum", "reduce_max")]
    + [reduce_case("reduce_mean", (2, 3, 4, 5), (2, 3), True)]
    + [softmax_case((3, 7), -1), softmax_case((2, 5, 3), 1), softmax_case((11,), 0)]
    + [layer_norm_case((4, 7), -1, True), layer_norm_case((2, 3, 5), 1, False)]
)


# -------------------------------------------------------------- transform


def transform_case(name: str, shape: tuple[int, ...], op: Callable, ref: Callable) -> Case:
    def make() -> tuple[te.Tensor, Reference]:
        return op(ph(shape, "x")), lambda x: ref(x)

    return Case(f"{name}_{shape}".replace(" ", ""), make)


def concat_case(shapes: list[tuple[int, ...]], axis: int) -> Case:
    names = [f"t{q}" for q in range(len(shapes))]

    def make() -> tuple[te.Tensor, Reference]:
        out = ops.concat([ph(s, n) for s, n in zip(shapes, names)], axis)
        return out, lambda **arrays: np.concatenate([arrays[n] for n in names], axis)

    return Case(f"concat_{shapes}_{axis}".replace(" ", ""), make)


TRANSFORM = [
    transform_case("transpose", (2, 3, 5), lambda x: ops.transpose(x, (2, 0, 1)),
                   lambda x: np.transpose(x, (2, 0, 1))),
    transform_case("transpose_rev", (3, 7), ops.transpose, np.transpose),
    transform_case("reshape", (2, 3, 5), lambda x: ops.reshape(x, (5, -1)),
                   lambda x: x.reshape(5, -1)),
    transform_case("reshape_4d", (6, 35), lambda x: ops.reshape(x, (3, 7, 2, 5)),
                   lambda x: x.reshape(3, 7, 2, 5)),
    transform_case("flatten", (2, 3, 5), ops.flatten, lambda x: x.reshape(2, -1)),
    transform_case("squeeze", (1, 3, 1, 5), ops.squeeze, np.squeeze),
    transform_case("expand_dims", (3, 5), lambda x: ops.expand_dims(x, (0, 2)),
                   lambda x: x[None, :, None]),
    transform_case("pad", (2, 3, 5), lambda x: ops.pad(x, (1, 0, 2), (0, 3, 1), 0.5),
                   lambda x: np.pad(x, ((1, 0), (0, 3), (2, 1)), constant_values=0.5)),
    transform_case("slice_steps", (5, 7, 11),
                   lambda x: ops.slice(x, [4, 1], [-6, 7], [0, 2], [-1, 3]),
                   lambda x: x[4:-6:-1, :, 1:7:3]),
    transform_case("slice_reverse", (5, 7), lambda x: ops.slice(x, [-1], [-(2**63)], [1], [-1]),
                   lambda x: x[:, ::-1]),
    concat_case([(2, 3, 5), (2, 4, 5)], 1),
    concat_case([(3, 2), (3, 5), (3, 1)], -1),
]  # fmt: skip

CASES = LINALG + NN + ELEMENTWISE + REDUCTIONS + TRANSFORM
