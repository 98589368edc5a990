"""Every op of the op library compiled through LLVM under several schedules, against numpy.

Each case (compiled_op_cases.py) is run under the naive schedule (`State.initial`),
the default schedule and the base hand schedules of hand_schedules.py that apply to
it, some on one thread and some on two (compiled_op_check.py). The variants of the
hand schedules, their factor sweeps and larger shapes are in
test_compiled_op_variants.py.
"""

from __future__ import annotations

import pytest
from compiled_op_cases import CASES, LINALG, NN, REDUCTIONS, Case, ph
from compiled_op_check import BASE_SCHEDULES, applies, check, pairs
from hand_schedules import NotApplicable, compute_at_producers, rfactor_reduction

from compiler import ops
from compiler.te.dag import ComputeDAG


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("schedule", ["naive", "default"])
def test_op_under_naive_and_default_schedules(case, schedule):
    check(case, schedule)


@pytest.mark.parametrize("case,schedule", pairs(CASES, BASE_SCHEDULES), ids=str)
def test_op_under_hand_schedule(case, schedule):
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
