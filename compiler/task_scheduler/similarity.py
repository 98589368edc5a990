"""Similarity groups: tasks expected to reach about the same GFLOP/s.

Two tasks are similar when they compute the same kind of anchor op (the
non-injective stage tags of their DAG: "conv2d_nchwc", "batch_matmul", ...)
and their FLOP counts are within one step of a golden-ratio log scale
(Ansor: int(log_1.618(FLOPs + 1))). The gradient policy assumes a task can
get as fast as the best GFLOP/s its group has reached, within a factor beta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from compiler.te.dag import ComputeDAG

GOLDEN_RATIO = 1.618
INJECTIVE_KIND = "injective"  # tasks with no anchor op (a lone concat, an elementwise chain)


def op_kind(dag: ComputeDAG) -> str:
    """The anchor op tags of `dag`, sorted and joined ("conv2d_nchwc", "matmul")."""
    tags = set()
    for t in dag.tensors:
        if t.is_placeholder:
            continue
        parts = [p for p in t.tag.split(",") if p]
        if parts and parts[0] != "injective":
            tags.update(parts)
    return "+".join(sorted(tags)) or INJECTIVE_KIND


def flop_bucket(flop_count: int) -> int:
    """int(log_1.618(FLOPs + 1)): tasks in one bucket are within a factor 1.618."""
    return int(math.log(flop_count + 1) / math.log(GOLDEN_RATIO))


def similarity_key(dag: ComputeDAG) -> tuple[str, int]:
    return op_kind(dag), flop_bucket(dag.flop_count)


def similarity_groups(dags: Sequence[ComputeDAG]) -> list[tuple[int, ...]]:
    """For every task, the indices of the tasks in its group (itself included)."""
    keys = [similarity_key(d) for d in dags]
    members: dict[tuple[str, int], list[int]] = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    return [tuple(members[k]) for k in keys]
