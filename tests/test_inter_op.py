"""Inter-op parallelism (models/inter_op.py): independent kernels found in the order,
their memory kept apart within a step, side-by-side execution on the pool giving
onnxruntime's results, and the choice following measured times."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.runtime.pool import pool
from models.compare import ort_session
from models.inter_op import MAX_WIDTH, MIN_WORK, StepChoice, candidate_widths, choose_widths
from models.load import load_graph
from models.memory_plan import allocate, step_indices
from models.network import compile_network
from models.onnx_import import import_model
from models.partition import partition


def heads_model(n_heads: int, width: int) -> onnx.ModelProto:
    """x -> n_heads independent MatMul + Relu heads of equal size -> concat."""
    rng = np.random.default_rng(0)
    nodes, weights, outs = [], [], []
    for h in range(n_heads):
        w = rng.standard_normal((width, width)).astype(np.float32) / width**0.5
        weights.append(numpy_helper.from_array(w, f"w{h}"))
        nodes.append(helper.make_node("MatMul", ["x", f"w{h}"], [f"m{h}"]))
        nodes.append(helper.make_node("Relu", [f"m{h}"], [f"r{h}"]))
        outs.append(f"r{h}")
    nodes.append(helper.make_node("Concat", outs, ["y"], axis=1))
    graph = helper.make_graph(
        nodes, "heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, n_heads * width])],
        weights,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_independent_heads_form_one_step_and_unequal_work_splits_it():
    subs = partition(import_model(heads_model(3, 32))).subgraphs
    widths = candidate_widths(subs)
    assert widths == [3, 1]  # the heads, then the concat that reads them all
    assert candidate_widths(subs, lambda s: MIN_WORK) == [3, 1]
    lopsided = {subs[0].output: 9.0 * MIN_WORK}
    assert candidate_widths(subs, lambda s: lopsided.get(s.output, MIN_WORK)) == [1, 1, 1, 1]
    assert candidate_widths(subs, lambda s: MIN_WORK / 4) == [1, 1, 1, 1]  # too little work


def test_steps_are_never_wider_than_max_width():
    subs = partition(import_model(heads_model(MAX_WIDTH + 2, 8))).subgraphs
    assert candidate_widths(subs) == [MAX_WIDTH, 2, 1]


def test_no_value_of_a_step_shares_memory_with_another_of_it():
    part = partition(load_graph("zoo:squeezenet"))
    widths = candidate_widths(part.subgraphs)
    assert max(widths) > 1  # the fire modules' expand convs
    buffers = allocate(part.graph, part.subgraphs, widths)
    steps = step_indices(len(part.subgraphs), widths)
    for s in set(steps):
        members = [sub for sub, t in zip(part.subgraphs, steps) if t == s]
        for sub in members:
            for other in members:
                if other is sub:
                    continue
                for name in (*other.params, other.output):
                    assert not np.shares_memory(buffers[sub.output], buffers[name]), (
                        sub.output,
                        name,
                    )


def test_step_widths_must_cover_the_subgraphs():
    with pytest.raises(ValueError, match="do not cover 3"):
        step_indices(3, [1, 1])


@pytest.mark.parametrize("n_heads", [2, 5])
def test_heads_run_side_by_side_give_onnxruntimes_results(n_heads):
    model = heads_model(n_heads, 48)
    net = compile_network(import_model(model), threads=2)
    widths = candidate_widths(net.partition.subgraphs)
    assert widths == [n_heads, 1]
    addresses = [(c.kernel.address, [a.ctypes.data for a in c.arrays]) for c in net.calls]
    net.sequence = pool().call_list(addresses, widths)  # side by side, whatever was measured
    x = np.random.default_rng(3).standard_normal((2, 48)).astype(np.float32)
    expected = ort_session(model, threads=1).run(["y"], {"x": x})[0]
    for _ in range(20):  # the pool's threads race for the calls differently each time
        np.testing.assert_allclose(net.run({"x": x})["y"], expected, rtol=1e-5, atol=1e-5)


def test_a_call_list_refuses_widths_that_do_not_cover_its_calls():
    net = compile_network(import_model(heads_model(2, 8)), threads=1)
    addresses = [(c.kernel.address, [a.ctypes.data for a in c.arrays]) for c in net.calls]
    with pytest.raises(ValueError, match="do not cover 3 calls"):
        pool().call_list(addresses, [2, 2])


def test_one_thread_measures_nothing():
    net = compile_network(import_model(heads_model(3, 32)), threads=1)
    assert net.steps == []


def test_equal_heads_are_measured_at_two_threads():
    net = compile_network(import_model(heads_model(4, 64)), threads=2)
    assert [(c.first, c.width) for c in net.steps] == [(0, 4)]
    assert all(c.sequential_s > 0 and c.side_by_side_s > 0 for c in net.steps)


def spin(seconds: float):
    def run() -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    return run


@pytest.mark.parametrize("side_faster", [True, False])
def test_a_step_is_kept_only_where_side_by_side_measured_faster(side_faster):
    fast, slow = spin(20e-6), spin(400e-6)

    def run_calls(first: int, width: int, side_by_side: bool):
        return fast if side_by_side == side_faster else slow

    widths, choices = choose_widths([1, 3, 1], run_calls)
    assert widths == ([1, 3, 1] if side_faster else [1, 1, 1, 1, 1])
    assert [(c.first, c.width, c.side_by_side) for c in choices] == [(1, 3, side_faster)]
    assert isinstance(choices[0], StepChoice)


def test_steps_of_the_same_kernels_are_measured_once():
    calls = []

    def run_calls(first: int, width: int, side_by_side: bool):
        calls.append(first)
        return spin(20e-6) if side_by_side else spin(200e-6)

    widths, choices = choose_widths([2, 1, 2, 2], run_calls, key=lambda first, width: width)
    assert widths == [2, 1, 2, 2]
    assert [c.first for c in choices] == [0] and set(calls) == {0}


def test_a_step_that_cannot_be_called_is_split():
    widths, choices = choose_widths([2], lambda first, width, side: None)
    assert widths == [1, 1] and choices == []
