"""Buffers of a compiled network: intermediate values share memory when their lifetimes
do not overlap, so the next kernel writes to memory that is still in cache.

Each subgraph output takes a block when its subgraph runs and gives it back after
its last reader (never while a subgraph reads and writes: inputs are released
after the output is placed); a block is reused for any value that fits (best
fit). Graph inputs, outputs and constants have arrays of their own.
"""

from __future__ import annotations

import math

import numpy as np

from compiler.runtime import aligned, empty
from models.graph import Graph
from models.partition import Subgraph


def allocate(graph: Graph, subgraphs: list[Subgraph]) -> dict[str, np.ndarray]:
    """An aligned C-contiguous array for every value a kernel reads or writes."""
    buffers = {n: aligned(np.ascontiguousarray(a, np.float32)) for n, a in graph.constants.items()}
    for value in graph.inputs + graph.outputs:
        buffers[value.name] = empty(value.shape)
    last_use = {name: k for k, sub in enumerate(subgraphs) for name in sub.params}
    free: list[np.ndarray] = []
    release_at: dict[int, list[np.ndarray]] = {}
    for k, sub in enumerate(subgraphs):
        if sub.output not in buffers:
            shape = graph.values[sub.output].shape
            block = _take(free, math.prod(shape))
            buffers[sub.output] = block[: math.prod(shape)].reshape(shape)
            release_at.setdefault(max(k, last_use.get(sub.output, k)), []).append(block)
        free.extend(release_at.pop(k, []))
    return buffers


def _take(free: list[np.ndarray], size: int) -> np.ndarray:
    """The smallest free block of at least `size` floats (removed from `free`), or a new one."""
    fits = [q for q, b in enumerate(free) if b.size >= size]
    if not fits:
        return empty((size,))
    return free.pop(min(fits, key=lambda q: free[q].size))
