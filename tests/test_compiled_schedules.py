"""Property: any legal step sequence, compiled with LLVM, computes what numpy computes.

The compiled twin of test_random_schedules.py (which runs the loop-IR
interpreter): random legal step sequences on matmul, conv2d and
conv2d+bias+relu are lowered, built, loaded and run on one or two threads.
The shapes keep every extent <= 12, so even a schedule that unrolls a whole
fused loop nest compiles in well under a second.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_random_schedules import DAGS, reference

from compiler import ops, te
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import empty, load, num_threads
from compiler.schedule.random_steps import random_state
from compiler.schedule.state import State
from compiler.schedule.steps import CacheWrite
from compiler.te.dag import ComputeDAG


def run_compiled(state: State, seed: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel output, reference-interpreter output) on random inputs."""
    func = lower(state)
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(p.shape).astype(p.dtype) for p in state.dag.placeholders]
    out_spec = func.params[-1]
    out = empty(out_spec.shape, out_spec.dtype)
    out[...] = np.nan
    kernel = load(build(func))
    with num_threads(threads):
        kernel(*inputs, out)
    return out, reference(state.dag, inputs)


def test_every_dag_has_small_extents():
    for make in DAGS.values():
        dag = make()
        assert max(d for t in dag.tensors for d in t.shape) <= 12


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(DAGS)),
    seed=st.integers(0, 2**32 - 1),
    n_steps=st.integers(1, 12),
    threads=st.sampled_from([1, 2]),
)
def test_random_legal_schedules_compile_to_the_definition(name, seed, n_steps, threads):
    state = random_state(State.initial(DAGS[name]()), np.random.default_rng(seed), n_steps)
    got, want = run_compiled(state, seed, threads)
    np.testing.assert_allclose(
        got, want, rtol=1e-4, atol=1e-4, err_msg=f"steps: {[s.describe() for s in state.steps]}"
    )


def test_random_steps_on_a_cache_written_scalar_reduction():
    x = te.placeholder((13,), name="x")
    start = State.initial(ComputeDAG([ops.reduce_sum(x)])).apply(CacheWrite(1))
    for seed in range(10):
        state = random_state(start, np.random.default_rng(seed), 4)
        got, want = run_compiled(state, seed, 1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
