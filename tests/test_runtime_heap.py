"""Kernels' heap scratch stays in the process between calls (compiler/runtime/heap.py)."""

from __future__ import annotations

import resource

import numpy as np

from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.ops.workloads import op_workload
from compiler.runtime import aligned, load, num_threads
from compiler.runtime.heap import keep_scratch_in_heap
from compiler.schedule.default import default_schedule


def test_a_kernel_with_megabytes_of_scratch_does_not_fault_its_pages_in_at_every_call():
    # F(2, 3) on 64 channels of 56x56: about 10 MB of transformed tiles per call
    dag = op_workload("conv2d_winograd", "1,64,56,56,64,3,3,1,1,2")
    kernel = load(build(lower(default_schedule(dag))))
    assert keep_scratch_in_heap()  # glibc: the thresholds were set by load()
    call = kernel.bind(*[aligned(np.ones(p.shape, np.float32)) for p in kernel.params])
    with num_threads(1):
        for _ in range(5):  # the heap settles on a layout that fits every block
            call()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            call()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # returned to the OS at each free, the scratch would fault in ~1700 pages per call
    assert faults < 1000
