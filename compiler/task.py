"""A tuning task: one computation to schedule, how often the network runs it.

The partition creates tasks from subgraphs; search, measurement and the task
scheduler consume them. A task pickles (the DAG pickles as its output tensors),
so builder and runner processes rebuild the same computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.te.dag import ComputeDAG


@dataclass(frozen=True, eq=False)
class SearchTask:
    """A ComputeDAG to tune, a readable name and its weight (occurrences in the network).

    Example:
        >>> task = SearchTask("matmul_128", ComputeDAG([C]))  # doctest: +SKIP
        >>> task.workload_key[:8], task.flop_count             # doctest: +SKIP
    """

    name: str
    dag: ComputeDAG = field(repr=False)
    weight: int = 1

    @property
    def workload_key(self) -> str:
        return self.dag.workload_key

    @property
    def flop_count(self) -> int:
        return self.dag.flop_count
