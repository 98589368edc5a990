"""Compiling an op case under a schedule and checking it against numpy: the schedules
(naive, default, the hand schedules of hand_schedules.py and their factor sweeps), and
`check(case, schedule)`. Outputs start as NaN, so an element the kernel never writes
fails the comparison."""

from __future__ import annotations

from functools import cache, partial

import numpy as np
from compiled_op_cases import CASES, Case
from hand_schedules import (
    HAND_SCHEDULES,
    HandSchedule,
    NotApplicable,
    cache_write_register_tile,
    compute_at_producers,
    rfactor_reduction,
    tile_parallel_vectorize,
)

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import empty, load, num_threads
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import CacheWrite, ComputeAt, Pragma, Rfactor, Split, Step
from compiler.te.dag import ComputeDAG

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


VARIANT_CASES = [c for c in CASES if c.name.startswith(VARIANT_FAMILIES)]
