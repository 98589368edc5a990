"""Every op of the op library compiled through LLVM under several schedules, against numpy.

Each case is run under the naive schedule (`State.initial`), the default
schedule and every hand schedule of hand_schedules.py that applies to it,
some on one thread and some on two. Outputs start as NaN so an element the
kernel never writes fails the comparison. The default run keeps the shapes
small; `-m slow` adds every variant of every hand schedule and larger shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import pytest
from hand_schedules import (
    HAND_SCHEDULES,
    HandSchedule,
    NotApplicable,
    cache_write_register_tile,
    compute_at_producers,
    rfactor_reduction,
    tile_parallel_vectorize,
)
from test_ops import BINARY, POSITIVE_UNARY, UNARY
from test_ops_nn import CONV_CASES, POOL_CASES, conv_reference, pool_reference

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import empty, load, num_threads
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import CacheWrite, ComputeAt, Pragma, Rfactor, Split, Step
from compiler.te.dag import ComputeDAG

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


# ------------------------------------------------------------- schedules

# hand schedule -> the steps that show it did what it is for
SIGNATURE_STEPS: dict[str, set[type[Step]]] = {
    "tile_parallel_vectorize": {Split},
    "cache_write_register_tile": {CacheWrite, ComputeAt, Pragma},
    "compute_at_producers": {ComputeAt},
    "rfactor": {Rfactor},
}
BASE_SCHEDULES = [
    "tile_parallel_vectorize",
    "cache_write_register_tile",
    "compute_at_producers",
    "rfactor_inner",
]
VARIANT_SCHEDULES = [name for name in HAND_SCHEDULES if name not in BASE_SCHEDULES]
# the default run checks the variants on these op families only; -m slow on all
VARIANT_FAMILIES = ("matmul", "conv2d", "depthwise", "max_pool", "avg_pool", "softmax", "layer")


# factor sweeps of the hand schedules, for the slow run
SWEEP_SCHEDULES: dict[str, HandSchedule] = {
    **{
        f"tile_parallel_vectorize_sweep{f}": partial(tile_parallel_vectorize, factor=f)
        for f in (1, 2, 5, 8, 16)
    },
    **{
        f"cache_write_register_tile_sweep{r}x{v}": partial(
            cache_write_register_tile, rows=r, lanes=v, max_unroll_step=u
        )
        for r, v, u in ((1, 1, 0), (4, 8, 512), (5, 16, 16))
    },
    **{
        f"compute_at_producers_sweep{f}{'_point' * p}": partial(
            compute_at_producers, factor=f, per_point=p
        )
        for f, p in ((1, False), (2, True), (8, False))
    },
    **{
        f"rfactor_sweep{f}{'_inner' * inner}": partial(
            rfactor_reduction, factor=f, factor_is_inner=inner
        )
        for f, inner in ((2, True), (2, False), (7, True), (16, False))
    },
}
SCHEDULES: dict[str, HandSchedule] = {
    "naive": State.initial,
    "default": default_schedule,
    **HAND_SCHEDULES,
    **SWEEP_SCHEDULES,
}


def make_state(case: Case, schedule: str) -> State:
    return SCHEDULES[schedule](ComputeDAG([case.make()[0]]))


@cache
def applies(case: Case, schedule: str) -> bool:
    try:
        make_state(case, schedule)
    except NotApplicable:
        return False
    return True


def threads_for(schedule: str) -> int:
    """One or two threads, alternating over the schedules in a fixed order."""
    return 1 + list(SCHEDULES).index(schedule) % 2


def run_compiled(
    case: Case, state: State, threads: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(kernel output on `threads` threads, numpy reference) on random inputs."""
    out_tensor, reference = case.make()
    dag = state.dag
    func = lower(state)
    assert [p.shape for p in func.params] == [t.shape for t in dag.placeholders + dag.outputs]
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(case.low, case.high, p.shape).astype(p.dtype) for p in dag.placeholders]
    out = empty(out_tensor.shape, out_tensor.dtype)
    out[...] = np.nan
    kernel = load(build(func))
    with num_threads(threads):
        kernel(*inputs, out)
    names = [p.name for p in dag.placeholders]
    want = reference(**{n: v.astype(np.float64) for n, v in zip(names, inputs)})
    return out, np.asarray(want)


def close(got: np.ndarray, want: np.ndarray, rtol: float, err_msg: str = "") -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    atol = rtol * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=err_msg)


def check(case: Case, schedule: str) -> None:
    state = make_state(case, schedule)
    for name, kinds in SIGNATURE_STEPS.items():
        if schedule.startswith(name):
            missing = kinds - {type(step) for step in state.steps}
            assert not missing, f"{schedule} did not apply {missing} to {case}"
    got, want = run_compiled(case, state, threads_for(schedule))
    close(got, want, case.rtol, err_msg=f"{case} under {schedule}:\n{state}")


def pairs(cases: list[Case], schedules: list[str]) -> list[tuple[Case, str]]:
    return [(c, s) for c in cases for s in schedules if applies(c, s)]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("schedule", ["naive", "default"])
def test_op_under_naive_and_default_schedules(case, schedule):
    check(case, schedule)


@pytest.mark.parametrize("case,schedule", pairs(CASES, BASE_SCHEDULES), ids=str)
def test_op_under_hand_schedule(case, schedule):
    check(case, schedule)


VARIANT_CASES = [c for c in CASES if c.name.startswith(VARIANT_FAMILIES)]


@pytest.mark.parametrize("case,schedule", pairs(VARIANT_CASES, VARIANT_SCHEDULES), ids=str)
def test_op_under_hand_schedule_variant(case, schedule):
    check(case, schedule)


def test_hand_schedules_apply_to_every_op_they_target():
    """Hand-schedule tests are generated only where a schedule applies: check that this is
    everywhere it should be, so a schedule that stopped applying cannot vanish silently."""

    def names(cases: list[Case], schedule: str = "") -> set[str]:
        return {c.name for c in cases if not schedule or applies(c, schedule)}

    scalar_outputs = {"reduce_sum_(13,)_None", "reduce_max_(13,)_None"}
    reducing = names(LINALG + NN + REDUCTIONS)
    assert names(CASES, "tile_parallel_vectorize") == names(CASES) - scalar_outputs
    assert names(CASES, "rfactor_inner") == reducing
    # every stage of a 1-D softmax is a scalar reduction or the output: no tile to cache
    cached = reducing - scalar_outputs - {"softmax_(11,)_0"}
    assert names(CASES, "cache_write_register_tile") == cached
    padded = {n for n in names(NN) if "_p0_" not in n and "pool" not in n}
    norms = {n for n in names(REDUCTIONS) if n.startswith(("softmax", "layer_norm"))}
    producers = padded | norms | {"dense_3x11x5_bias"}
    assert names(CASES, "compute_at_producers") == producers
    relu = ComputeDAG([ops.relu(ph((3, 4), "x"))])
    with pytest.raises(NotApplicable, match="no reduction over more than one element"):
        rfactor_reduction(relu)
    with pytest.raises(NotApplicable, match="no producer with a single consumer among"):
        compute_at_producers(relu)


# ------------------------------------------------------------- slow sweep

SLOW_CASES = (
    [matmul_case(33, 64, 47, tb=True), matmul_case(17, 100, 3, ta=True)]
    + [matmul_case(64, 12, 96), dense_case(8, 130, 17, with_bias=True)]
    + [batch_matmul_case((4, 17, 33), (33, 9)), batch_matmul_case((2, 1, 12, 20), (3, 20, 7))]
    + [conv_case(*c) for c in CONV_CASES]
    + [conv_case((1, 16, 14, 14), (8, 3, 3), (1, 1), 1, (1, 1), 1)]
    + [conv_case((2, 8, 15, 15), (8, 3, 3), (2, 2), (1, 0, 2, 1), (1, 1), 4)]
    + [depthwise_case((1, 8, 28, 28), 1, (3, 3), (2, 2), 1, (1, 1))]
    + [pool_case("max", *c) for c in POOL_CASES]
    + [pool_case("avg", *c, count_include_pad=inc) for c in POOL_CASES for inc in (False, True)]
    + [pool_case("max", (1, 8, 28, 28), (3, 3), (2, 2), 1, (1, 1), True)]
    + [global_avg_pool_case((1, 8, 14, 14))]
    + [unary_case(name, (4, 33, 17)) for name in sorted(UNARY)]
    + [binary_case(name, (17, 1, 33), (5, 1)) for name in sorted(BINARY)]
    + [reduce_case("reduce_mean", (4, 4099), -1, False), reduce_case("reduce_max", (16, 65, 3), (0, 2), True)]
    + [softmax_case((8, 129), -1), softmax_case((4, 33, 5), 1)]
    + [layer_norm_case((5, 64), -1, True), layer_norm_case((3, 4, 33), 1, True)]
    + [transform_case("transpose", (4, 33, 17), lambda x: ops.transpose(x, (1, 2, 0)),
                      lambda x: np.transpose(x, (1, 2, 0)))]
    + [concat_case([(5, 17, 3), (5, 17, 30)], 2)]
)  # fmt: skip
OTHER_CASES = [c for c in CASES if c not in VARIANT_CASES]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case,schedule",
    pairs(OTHER_CASES, VARIANT_SCHEDULES) + pairs(CASES, list(SWEEP_SCHEDULES)),
    ids=str,
)
def test_op_under_every_hand_schedule_variant(case, schedule):
    check(case, schedule)


@pytest.mark.slow
@pytest.mark.parametrize("case,schedule", pairs(SLOW_CASES, list(SCHEDULES)), ids=str)
def test_larger_op_under_every_schedule(case, schedule):
    check(case, schedule)
