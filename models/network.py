"""Compile a partitioned network to kernels and run it: one `run(inputs)` per inference.

Every distinct workload is compiled once, from the schedule `schedule_for(task)`
returns (the default schedule unless tuning records say better). Constants
become aligned arrays passed as kernel arguments; every intermediate buffer
is allocated once at compile time (intermediates share memory when their
lifetimes do not overlap, models/memory_plan.py); each subgraph's call is pre-bound to its
arrays, so an inference is a list of argument-less ctypes calls.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.runtime import Kernel, load, num_threads
from compiler.runtime.pool import pool
from compiler.schedule.default import default_schedule
from compiler.schedule.state import State
from compiler.schedule.steps import Annotate, Annotation
from models.errors import ModelError
from models.graph import Graph
from models.inter_op import StepChoice, candidate_widths, choose_widths
from models.memory_plan import allocate
from models.partition import Partition, TuningTask, partition

ScheduleFor = Callable[[TuningTask], State]

# Below this much work (FLOPs plus elements read and written) a task runs on one
# thread. On the runtime's pool a parallel loop costs about a microsecond of hand-off
# (docs/threads.md): measured on 2 threads against 1, zoo tasks of 8,000 units ran no
# faster (0.5-1 us), of 76,000 and more 1.6-2x faster (5-9 us on one thread).
SERIAL_BELOW_WORK = 32_000


def passive_thread_wait() -> None:
    """Idle OpenMP workers of other libraries in this process sleep at once
    (OMP_WAIT_POLICY=passive).

    Generated kernels no longer use OpenMP: their parallel loops run on the runtime's
    own pool (compiler/runtime/pool.c, docs/threads.md), whose idle workers spin a few
    microseconds, then yield their core to anyone who wants it, then park, and whose
    caller never waits for a worker that has not started a chunk, so another process
    holding a core does not stall an inference. A library that brings a libgomp team
    into the process (xgboost in the tuning flow) would still spin after each of its
    calls by default, taking the cores from the next inference; libgomp with its
    default spin made inferences 10-100x slower next to such threads on this shared
    machine. Only effective before that library loads libgomp; an explicit
    OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment wins.
    """
    if "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def default_schedule_for(task: TuningTask) -> State:
    """The default schedule, serial for small tasks."""
    state = default_schedule(task.dag)
    return without_parallel(state) if task_work(task) < SERIAL_BELOW_WORK else state


def task_work(task: TuningTask) -> int:
    """FLOPs plus the elements of every input and output: a proxy for the time of
    tasks that move data (concats, pools, reshapes) as much as of those that compute."""
    tensors = [*task.dag.placeholders, *task.dag.outputs]
    return task.flops + sum(math.prod(t.shape) for t in tensors)


def without_parallel(state: State) -> State:
    """The same schedule with its parallel annotations dropped (loops run serially)."""
    steps = [
        st
        for st in state.steps
        if not (isinstance(st, Annotate) and st.annotation is Annotation.PARALLEL)
    ]
    return State.replay(state.dag, steps)


@dataclass
class Network:
    """A compiled network. `run({input: array}) -> {output: array}`."""

    graph: Graph
    partition: Partition
    kernels: dict[str, Kernel]
    buffers: dict[str, np.ndarray]
    calls: list[Callable[[], None]]
    compile_s: float
    tuned_keys: set[str] = field(default_factory=set)
    # threads of this network's parallel loops (None: the calling thread's setting,
    # compiler.runtime.set_num_threads); the caller's setting is restored after a run
    threads: int | None = None
    # every call made from C in one go (compiler/runtime/pool.py call_list), or None:
    # the calls one by one from Python (no native pool, or a kernel of many arrays)
    sequence: Callable[[], None] | None = None
    # runs of independent calls measured for side-by-side execution (models/inter_op.py);
    # those whose `side_by_side` holds run so in `sequence`
    steps: list[StepChoice] = field(default_factory=list)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference: copy the inputs in, call every kernel, copy the outputs out."""
        for value in self.graph.inputs:
            if value.name not in inputs:
                raise ModelError(f"{self.graph.name}: missing input {value.name!r}")
            array = np.asarray(inputs[value.name])
            if array.shape != value.shape:
                raise ModelError(
                    f"{self.graph.name}: input {value.name!r} must have shape "
                    f"{list(value.shape)}, got {list(array.shape)}"
                )
            if not np.can_cast(array.dtype, value.dtype, "same_kind"):
                raise ModelError(
                    f"{self.graph.name}: input {value.name!r} must be {value.dtype}, "
                    f"got {array.dtype}"
                )
            np.copyto(self.buffers[value.name], array, casting="same_kind")
        self.run_bound()
        return {v.name: self.buffers[v.name].copy() for v in self.graph.outputs}

    def run_bound(self) -> None:
        """The kernels alone on the inputs already in place (for timing loops)."""
        if self.threads is None:
            self._run_calls()
            return
        with num_threads(self.threads):
            self._run_calls()

    def _run_calls(self) -> None:
        if self.sequence is not None:
            self.sequence()
            return
        for call in self.calls:
            call()

    @property
    def tasks(self) -> list[TuningTask]:
        return self.partition.tasks


def compile_network(
    graph: Graph,
    *,
    schedule_for: ScheduleFor = default_schedule_for,
    tuned_keys: set[str] | None = None,
    threads: int | None = None,
    inter_op: bool = True,
) -> Network:
    """Partition `graph`, compile one kernel per distinct workload, bind every call.
    `threads`: the network's parallel loops run on that many threads (None: the
    calling thread's setting). `inter_op`: independent kernels may run side by side
    where that measured faster at that thread count (models/inter_op.py).

    Example:
        >>> net = compile_network(import_model("model.onnx"))   # doctest: +SKIP
        >>> outputs = net.run({"input": x})                      # doctest: +SKIP
    """
    if threads is not None and threads < 1:
        raise ModelError(f"threads must be at least 1, got {threads}")
    start = time.perf_counter()
    part = partition(graph)
    kernels = {t.workload_key: _compile_task(t, schedule_for) for t in part.tasks}
    run_threads = threads or pool().get_num_threads()
    widths = None
    if inter_op and run_threads > 1:
        by_key = {t.workload_key: t for t in part.tasks}
        widths = candidate_widths(part.subgraphs, lambda s: task_work(by_key[s.workload_key]))
    buffers = allocate(part.graph, part.subgraphs, widths)
    calls = []
    for sub in part.subgraphs:
        args = sub.arrays(buffers)
        calls.append(kernels[sub.workload_key].bind(*args))
    addresses = [(call.kernel.address, [a.ctypes.data for a in call.arrays]) for call in calls]
    steps: list[StepChoice] = []
    if widths is not None and max(widths) > 1 and pool().call_list(addresses) is not None:
        widths, steps = _measure_steps(part, buffers, calls, addresses, widths, run_threads)
    sequence = pool().call_list(addresses, widths)
    elapsed = time.perf_counter() - start
    return Network(
        part.graph, part, kernels, buffers, calls, elapsed, set(tuned_keys or ()), threads,
        sequence, steps,
    )  # fmt: skip


def _measure_steps(
    part: Partition,
    buffers: dict[str, np.ndarray],
    calls: list[Callable[[], None]],
    addresses: list[tuple[int, list[int]]],
    widths: list[int],
    threads: int,
) -> tuple[list[int], list[StepChoice]]:
    """`choose_widths` on this network's bound calls, at `threads`, after one inference
    on zero inputs (valid indices for gathers; intermediates filled)."""
    for value in part.graph.inputs:
        buffers[value.name].fill(0)
    with num_threads(threads):
        for call in calls:
            call()

        def run_calls(first: int, width: int, side_by_side: bool) -> Callable[[], None] | None:
            return pool().call_list(
                addresses[first : first + width], [width] if side_by_side else None
            )

        def key(first: int, width: int) -> tuple[str, ...]:
            return tuple(s.workload_key for s in part.subgraphs[first : first + width])

        return choose_widths(widths, run_calls, key)


def _compile_task(task: TuningTask, schedule_for: ScheduleFor) -> Kernel:
    state = schedule_for(task)
    return load(build(lower(state, name=f"task{task.id}")))
