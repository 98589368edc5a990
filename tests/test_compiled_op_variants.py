"""The op cases compiled under the variants of the hand schedules (the default run: on
the op families of VARIANT_FAMILIES; `-m slow`: on every op, with the factor sweeps,
and larger shapes under every schedule), against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from compiled_op_cases import (
    CASES,
    batch_matmul_case,
    binary_case,
    concat_case,
    conv_case,
    dense_case,
    depthwise_case,
    global_avg_pool_case,
    layer_norm_case,
    matmul_case,
    pool_case,
    reduce_case,
    softmax_case,
    transform_case,
    unary_case,
)
from compiled_op_check import (
    SCHEDULES,
    SWEEP_SCHEDULES,
    VARIANT_CASES,
    VARIANT_SCHEDULES,
    check,
    pairs,
)
from test_ops import BINARY, UNARY
from test_ops_nn import CONV_CASES, POOL_CASES

from compiler import ops


@pytest.mark.parametrize("case,schedule", pairs(VARIANT_CASES, VARIANT_SCHEDULES), ids=str)
def test_op_under_hand_schedule_variant(case, schedule):
    check(case, schedule)


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
