"""Intermediate buffers share memory only between values whose lifetimes do not overlap."""

from __future__ import annotations

import numpy as np

from models import zoo
from models.memory_plan import allocate
from models.onnx_import import import_model
from models.partition import partition


def test_live_values_never_share_memory():
    part = partition(import_model(zoo.build("squeezenet")))
    buffers = allocate(part.graph, part.subgraphs)
    last_use = {n: k for k, s in enumerate(part.subgraphs) for n in s.params}
    outputs = {v.name for v in part.graph.outputs}
    for k, sub in enumerate(part.subgraphs):
        live = [s.output for s in part.subgraphs[:k] if last_use.get(s.output, -1) >= k]
        live += [v.name for v in part.graph.inputs] + list(part.graph.constants)
        for name in live:
            assert not np.shares_memory(buffers[sub.output], buffers[name]), (sub.ops, name)
    for name in outputs:  # graph outputs have memory of their own
        others = [b for n, b in buffers.items() if n != name]
        assert not any(np.shares_memory(buffers[name], b) for b in others)
    starts = {array.ctypes.data for array in buffers.values()}
    assert len(starts) < len(buffers)  # some intermediates do share a block


def test_every_buffer_is_aligned_and_contiguous():
    part = partition(import_model(zoo.build("mlp")))
    for array in allocate(part.graph, part.subgraphs).values():
        assert array.flags.c_contiguous and array.ctypes.data % 64 == 0
