"""The manifest an artifact carries (network.json, format version 1; docs/deploy.md).

What the runtime needs (inputs, outputs, files with sizes and digests, the arena,
the CPU flags) and what a reader wants to know: which tasks came from which
records (workload key, tuned or default, the steps that replay the schedule, the
record's latency), the call sequence and memory plan, the target, the tool version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from compiler.records import MeasureRecord, tool_version
from compiler.schedule.state import State
from compiler.schedule.steps import steps_to_json
from compiler.target import Target
from deploy.manifest import (
    ABI_VERSION,
    FORMAT,
    FORMAT_VERSION,
    HEADER_FILE,
    LIBRARY_FILE,
    WEIGHTS_FILE,
    TensorSpec,
)
from models.artifact.features import required_cpu_flags
from models.memory_plan import MemoryPlan
from models.partition import Partition, TuningTask

ENTRY = "sketchtune_network"


@dataclass(frozen=True)
class TaskBuild:
    """One task as compiled: its schedule, kernel symbol, and the record it came from."""

    task: TuningTask
    state: State
    symbol: str
    record: MeasureRecord | None


@dataclass(frozen=True)
class FileInfo:
    bytes: int
    sha256: str


def manifest(
    *,
    model: str,
    part: Partition,
    plan: MemoryPlan,
    builds: list[TaskBuild],
    target: Target,
    library: FileInfo,
    weights: FileInfo,
    records: dict[str, str] | None,
) -> dict[str, Any]:
    """The manifest's JSON object."""
    graph = part.graph
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": "sketchtune", "version": tool_version()},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": model,
        "graph": graph.name,
        "inputs": [TensorSpec(v.name, v.shape, v.dtype).to_json() for v in graph.inputs],
        "outputs": [TensorSpec(v.name, v.shape, v.dtype).to_json() for v in graph.outputs],
        "library": {"file": LIBRARY_FILE, "bytes": library.bytes, "sha256": library.sha256,
                    "abi_version": ABI_VERSION, "entry": ENTRY, "header": HEADER_FILE},
        "weights": {"file": WEIGHTS_FILE, "bytes": weights.bytes, "sha256": weights.sha256,
                    "alignment": 64, "tensors": len(plan.constants)},
        "arena_bytes": plan.arena_bytes,
        "target": {"triple": target.triple, "cpu": target.cpu, "isa": target.isa,
                   "describe": target.describe(), "cpu_flags": required_cpu_flags(target),
                   "llvm_features": sorted(target.enabled_features)},
        "records": records,
        "tasks": [_task(b) for b in builds],
        "calls": _calls(part, builds),
        "values": {name: {"region": p.region, "index": p.index, "offset": p.offset_bytes,
                          "bytes": p.nbytes} for name, p in plan.placements.items()},
    }  # fmt: skip


def _task(b: TaskBuild) -> dict[str, Any]:
    t, rec = b.task, b.record
    return {
        "id": t.id,
        "entry": b.symbol,
        "object": LIBRARY_FILE,
        "ops": list(t.ops),
        "shapes": t.shapes,
        "weight": t.weight,
        "flops": t.flops,
        "workload_key": t.workload_key,
        "tuned": rec is not None,
        "schedule": "record" if rec is not None else "default",
        "record": None if rec is None else _record(rec),
        "steps": steps_to_json(b.state.steps),
    }


def _record(rec: MeasureRecord) -> dict[str, Any]:
    return {
        "latency_s": min(rec.costs_s),
        "timestamp": rec.timestamp,
        "task_name": rec.task_name,
        "tool_version": rec.tool_version,
    }


def _calls(part: Partition, builds: list[TaskBuild]) -> list[dict[str, Any]]:
    symbol = {b.task.workload_key: (b.task.id, b.symbol) for b in builds}
    return [
        {"subgraph": s.id, "task": symbol[s.workload_key][0], "entry": symbol[s.workload_key][1],
         "reads": list(s.params), "writes": s.output}
        for s in part.subgraphs
    ]  # fmt: skip
