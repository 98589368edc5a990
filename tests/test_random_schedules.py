"""Property: any legal step sequence computes what the compute definition says.

Random step sequences are applied to matmul, conv2d and conv2d+bias+relu; the
lowered program (run by the loop-IR interpreter here; compiled with LLVM in
test_compiled_schedules.py) must match numpy, and the steps must survive a
JSON round trip and replay to the same program.
"""

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ops, te
from compiler.lower import interpret
from compiler.lower.loop_ir import format_func
from compiler.lower.lower import lower
from compiler.schedule.random_steps import random_state
from compiler.schedule.state import State
from compiler.schedule.steps import steps_from_json, steps_to_json
from compiler.te.dag import ComputeDAG
from compiler.te.evaluate import evaluate


def matmul_dag():
    a, b = te.placeholder((6, 5), name="A"), te.placeholder((5, 7), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def conv_dag():
    x, w = te.placeholder((1, 3, 5, 5), name="X"), te.placeholder((4, 3, 3, 3), name="W")
    return ComputeDAG([ops.conv2d_nchw(x, w, stride=1, padding=1)])


def conv_bias_relu_dag():
    x, w = te.placeholder((1, 2, 5, 6), name="X"), te.placeholder((3, 2, 3, 3), name="W")
    bias = te.placeholder((3, 1, 1), name="bias")
    conv = ops.conv2d_nchw(x, w, stride=2, padding=1)
    return ComputeDAG([ops.relu(ops.add(conv, bias))])


DAGS = {"matmul": matmul_dag, "conv2d": conv_dag, "conv2d_bias_relu": conv_bias_relu_dag}


def reference(dag: ComputeDAG, args: list[np.ndarray]) -> np.ndarray:
    inputs = dict(zip(dag.placeholders, args))
    return evaluate(dag.outputs, inputs)[0]


def check_state(state: State, seed: int) -> None:
    rng = np.random.default_rng(seed)
    func = lower(state)
    args = [rng.standard_normal(p.shape).astype(p.dtype) for p in func.params]
    out = args[-1]
    out[...] = np.nan
    interpret.run(func, *args)
    want = reference(state.dag, args[:-1])
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(DAGS)),
    seed=st.integers(0, 2**32 - 1),
    n_steps=st.integers(1, 10),
)
def test_random_legal_schedules_compute_the_definition(name, seed, n_steps):
    dag = DAGS[name]()
    state = random_state(State.initial(dag), np.random.default_rng(seed), n_steps)
    check_state(state, seed)
    again = State.replay(dag, steps_from_json(json.loads(json.dumps(steps_to_json(state.steps)))))
    assert again.steps == state.steps
    assert format_func(lower(again)) == format_func(lower(state))
