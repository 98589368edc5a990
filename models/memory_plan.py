"""Buffers of a compiled network: intermediate values share memory when their lifetimes
do not overlap, so the next kernel writes to memory that is still in cache.

Each subgraph output takes a block when its subgraph runs and gives it back after
its last reader (never while a subgraph reads and writes: inputs are released
after the output is placed); a block is reused for any value that fits (best
fit). Graph inputs, outputs and constants have arrays of their own.

`plan_offsets` is the same plan in bytes, for a network that owns no arrays (a
deployable artifact, models/artifact): each value is an offset into one of four
regions, the caller's inputs and outputs, the weights file and one scratch arena,
every offset a multiple of 64 bytes (the kernels assume aligned arrays).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from compiler.runtime import aligned, empty
from models.graph import Graph
from models.partition import Subgraph


def allocate(
    graph: Graph, subgraphs: list[Subgraph], widths: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """An aligned C-contiguous array of its value's dtype for every value a kernel reads or
    writes (intermediates are views of shared byte blocks).

    `widths`: the subgraphs run in steps (models/inter_op.py), step s being the next
    widths[s] of them, whose calls may run at the same time: lifetimes are counted in
    steps, so no value written in a step shares memory with one read or written in it.
    """
    dtypes = {n: v.dtype for n, v in graph.values.items()}
    buffers = {
        n: aligned(np.asarray(a, dtypes.get(n, "float32"), order="C"))
        for n, a in graph.constants.items()
    }
    for value in graph.inputs + graph.outputs:
        buffers[value.name] = empty(value.shape, value.dtype)
    step_of = step_indices(len(subgraphs), widths)
    last_use = {name: step_of[k] for k, sub in enumerate(subgraphs) for name in sub.params}
    free: list[np.ndarray] = []
    release_at: dict[int, list[np.ndarray]] = {}
    for k, sub in enumerate(subgraphs):
        step = step_of[k]
        if sub.output not in buffers:
            value = graph.values[sub.output]
            nbytes = math.prod(value.shape) * np.dtype(value.dtype).itemsize
            block = _take(free, nbytes)
            buffers[sub.output] = block[:nbytes].view(value.dtype).reshape(value.shape)
            release_at.setdefault(max(step, last_use.get(sub.output, step)), []).append(block)
        if k + 1 == len(subgraphs) or step_of[k + 1] != step:  # the step's last subgraph
            free.extend(release_at.pop(step, []))
    return buffers


def step_indices(n: int, widths: Sequence[int] | None) -> list[int]:
    """The step of each of `n` subgraphs run in steps of `widths` (None: one each)."""
    if widths is None:
        return list(range(n))
    steps = [s for s, w in enumerate(widths) for _ in range(w)]
    if len(steps) != n:
        raise ValueError(f"step widths {list(widths)} do not cover {n} subgraphs")
    return steps


def _take(free: list[np.ndarray], size: int) -> np.ndarray:
    """The smallest free block of at least `size` bytes (removed from `free`), or a new one."""
    fits = [q for q, b in enumerate(free) if b.size >= size]
    if not fits:
        return empty((size,), np.uint8)
    return free.pop(min(fits, key=lambda q: free[q].size))


ALIGN_BYTES = 64


@dataclass(frozen=True)
class Placement:
    """Where a value lives: `region` "input" or "output" (the `index`-th of the graph's),
    "weights" or "arena", at `offset_bytes`; `nbytes` is its size."""

    region: str
    index: int
    offset_bytes: int
    nbytes: int


@dataclass(frozen=True)
class MemoryPlan:
    """Every value a kernel reads or writes, placed; the sizes of the two byte regions.
    `constants` lists the weights in file order."""

    placements: Mapping[str, Placement]
    constants: tuple[str, ...]
    weights_bytes: int
    arena_bytes: int


def plan_offsets(graph: Graph, subgraphs: list[Subgraph]) -> MemoryPlan:
    """`allocate`'s plan as byte offsets: the same blocks, reused by best fit, laid out
    one after another in an arena; the constants the subgraphs read, in a weights region.

    Example:
        >>> plan = plan_offsets(part.graph, part.subgraphs)   # doctest: +SKIP
        >>> plan.placements["conv1_out"]                      # doctest: +SKIP
        Placement(region='arena', index=0, offset_bytes=802816, nbytes=802816)
    """
    places: dict[str, Placement] = {}
    for region, values in (("input", graph.inputs), ("output", graph.outputs)):
        for k, value in enumerate(values):
            places.setdefault(value.name, Placement(region, k, 0, _nbytes(graph, value.name)))
    constants = tuple(dict.fromkeys(n for s in subgraphs for n in s.params if n in graph.constants))
    weights_end = 0
    for name in constants:
        places[name] = Placement("weights", 0, weights_end, _nbytes(graph, name))
        weights_end += _padded(places[name].nbytes)
    arena = _Arena()
    last_use = {name: k for k, sub in enumerate(subgraphs) for name in sub.params}
    release_at: dict[int, list[tuple[int, int]]] = {}
    for k, sub in enumerate(subgraphs):
        if sub.output not in places:
            nbytes = _nbytes(graph, sub.output)
            block = arena.take(nbytes)
            places[sub.output] = Placement("arena", 0, block[0], nbytes)
            release_at.setdefault(max(k, last_use.get(sub.output, k)), []).append(block)
        arena.free.extend(release_at.pop(k, []))
    return MemoryPlan(places, constants, weights_end, arena.end)


@dataclass
class _Arena:
    """Blocks (offset, size in bytes) of one growing region; `free` are reusable. A block
    is as big as the value it was made for (so best fit decides as `allocate`'s does) and
    the next one starts at the next multiple of 64 bytes."""

    end: int = 0
    free: list[tuple[int, int]] = field(default_factory=list)

    def take(self, size: int) -> tuple[int, int]:
        """The smallest free block of at least `size` bytes, or a new one at the end."""
        fits = [q for q, (_, b) in enumerate(self.free) if b >= size]
        if fits:
            return self.free.pop(min(fits, key=lambda q: self.free[q][1]))
        offset = self.end
        self.end += _padded(size)
        return (offset, size)


def _nbytes(graph: Graph, name: str) -> int:
    if name in graph.constants:
        return int(graph.constants[name].size) * np.dtype(_dtype(graph, name)).itemsize
    value = graph.values[name]
    return math.prod(value.shape) * np.dtype(value.dtype).itemsize


def _dtype(graph: Graph, name: str) -> str:
    value = graph.values.get(name)
    return value.dtype if value is not None else "float32"


def constant_bytes(graph: Graph, name: str) -> bytes:
    """A constant's bytes as the kernels read it (C order, the value's dtype)."""
    return np.ascontiguousarray(graph.constants[name], _dtype(graph, name)).tobytes()


def _padded(nbytes: int) -> int:
    return max(ALIGN_BYTES, -(-nbytes // ALIGN_BYTES) * ALIGN_BYTES)
