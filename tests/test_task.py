"""A SearchTask crosses process boundaries: the DAG rebuilt in a spawned process
has the same workload key and lowers to the same program."""

from __future__ import annotations

import multiprocessing
import pickle

from compiler import ops, te
from compiler.lower.loop_ir import format_func
from compiler.lower.lower import lower
from compiler.schedule.default import default_schedule
from compiler.task import SearchTask
from compiler.te.dag import ComputeDAG


def _key_and_program(blob: bytes) -> tuple[str, str]:
    task = pickle.loads(blob)
    return task.workload_key, format_func(lower(default_schedule(task.dag)))


def test_task_pickles_into_a_spawned_process():
    x, w = te.placeholder((1, 8, 10, 10), name="x"), te.placeholder((8, 8, 3, 3), name="w")
    task = SearchTask("conv_relu", ComputeDAG([ops.relu(ops.conv2d_nchw(x, w, padding=1))]), 2)
    program = format_func(lower(default_schedule(task.dag)))  # fills the cached hashes first
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        key, remote = pool.apply(_key_and_program, (pickle.dumps(task),))
    assert key == task.workload_key
    assert remote == program
    copy = pickle.loads(pickle.dumps(task))
    assert (copy.name, copy.weight, copy.flop_count) == ("conv_relu", 2, task.flop_count)
