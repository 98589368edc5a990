"""`export_artifact`: a model and its records to one deployable artifact directory.

    DIR/model.so      every kernel (position-independent), `sketchtune_network` (the
                      whole inference: each kernel called on pointers at planned
                      offsets), the C runtime and the thread pool; needs libm and libc only
    DIR/weights.bin   the constants, each at a 64-byte aligned offset (memory-mapped)
    DIR/network.json  the manifest (models/artifact/manifest.py)
    DIR/sketchtune.h  the C interface

Each task is compiled from the same schedule and through the same optimized IR as
the in-process executor (models/network.py), so the artifact's outputs equal its
outputs bit for bit. Files are written under temporary names and renamed, the
manifest last: a directory with a manifest is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.codegen.build import KernelCall, Pointer, build, build_sequence
from compiler.lower.lower import lower
from compiler.records import MeasureRecord
from compiler.schedule.state import State
from compiler.schedule.steps import steps_to_json
from compiler.target import host_target
from deploy.manifest import FORMAT_VERSION, LIBRARY_FILE, MANIFEST_FILE, WEIGHTS_FILE, TensorSpec
from models.artifact.features import required_cpu_flags
from models.artifact.link import NetworkInfo, header_files, link_library
from models.artifact.manifest import ENTRY, FileInfo, TaskBuild, manifest
from models.errors import ModelError
from models.graph import Graph
from models.load import Shapes, load_graph
from models.memory_plan import MemoryPlan, constant_bytes, plan_offsets
from models.network import default_schedule_for
from models.partition import Partition, TuningTask, partition
from models.tuned import RecordSchedules, record_schedules

_BASES = {"input": "inputs", "output": "outputs", "weights": "weights", "arena": "arena"}


@dataclass(frozen=True)
class ArtifactInfo:
    """What `export_artifact` wrote."""

    out_dir: Path
    model: str
    tasks: int
    tuned_tasks: int
    library_bytes: int
    weights_bytes: int
    arena_bytes: int
    compile_s: float

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "out_dir": str(self.out_dir),
            "tasks": self.tasks,
            "tuned_tasks": self.tuned_tasks,
            "untuned_tasks": self.tasks - self.tuned_tasks,
            "library_bytes": self.library_bytes,
            "weights_bytes": self.weights_bytes,
            "arena_bytes": self.arena_bytes,
            "compile_s": self.compile_s,
        }


def export_artifact(
    model: str | Graph,
    records: str | Path | None,
    out_dir: str | Path,
    *,
    input_shapes: Shapes | None = None,
    threads: int = 1,
) -> ArtifactInfo:
    """Compile `model` (a path, `zoo:NAME` or an imported Graph) with each task's best
    record in `records` measured at `threads` threads per kernel (the default schedule
    where there is none, or for every task when `records` is None) into the artifact
    directory `out_dir`. The manifest names that thread count.

    Example:
        >>> info = export_artifact("zoo:resnet18", "runs/records.db", "runs/r18")  # doctest: +SKIP
        >>> deploy.Session("runs/r18").run(None, {"input": x})                     # doctest: +SKIP
    """
    start = time.perf_counter()
    graph = model if isinstance(model, Graph) else load_graph(model, input_shapes)
    label = model if isinstance(model, str) else graph.name
    schedules = record_schedules(records, threads) if records is not None else None
    try:
        part = partition(graph)
        builds = [_build_task(t, schedules) for t in part.tasks]
    finally:
        if schedules is not None:
            schedules.store.close()
    out = _directory(Path(out_dir))
    plan = plan_offsets(part.graph, part.subgraphs)
    library = _write_library(out, part, plan, builds)
    weights = _write_weights(out, part.graph, plan)
    for header in header_files():
        shutil.copyfile(header, out / header.name)
    provenance = (
        None
        if schedules is None
        else {"path": str(records), "target": schedules.target, "threads": threads}
    )
    data = manifest(model=label, part=part, plan=plan, builds=builds, target=host_target(),
                    library=library, weights=weights, records=provenance)  # fmt: skip
    _write_json(out / MANIFEST_FILE, data)
    tuned = sum(b.record is not None for b in builds)
    elapsed = time.perf_counter() - start
    return ArtifactInfo(out, label, len(builds), tuned, library.bytes, weights.bytes,
                        plan.arena_bytes, elapsed)  # fmt: skip


def _directory(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"--out {out}: cannot make the directory ({err.strerror})") from None
    return out


def _build_task(task: TuningTask, schedules: RecordSchedules | None) -> TaskBuild:
    schedule_for: Callable[[TuningTask], State] = schedules or default_schedule_for
    state = schedule_for(task)
    record = None
    if schedules is not None and task.workload_key in schedules.tuned:
        record = _served_record(schedules, task.workload_key, steps_to_json(state.steps))
    symbol = f"task{task.id}"  # the in-process executor's name: the same code
    return TaskBuild(task, state, symbol, record)


def _served_record(schedules: RecordSchedules, key: str, steps: list) -> MeasureRecord | None:
    """The record whose steps `schedules` replayed: a re-timing's winner or the best."""
    store, target = schedules.store, schedules.target
    lookups = [getattr(store, "retimed", None), store.best]
    found = [r for r in (f(key, target) for f in lookups if f is not None) if r is not None]
    return next((r for r in found if r.steps == steps), found[0] if found else None)


def network_calls(part: Partition, plan: MemoryPlan, builds: list[TaskBuild]) -> list[KernelCall]:
    """Each subgraph's kernel call, its arguments at their planned places."""
    symbol = {b.task.workload_key: b.symbol for b in builds}
    calls = []
    for sub in part.subgraphs:
        places = [plan.placements[name] for name in (*sub.params, sub.output)]
        args = tuple(Pointer(_BASES[p.region], p.index, p.offset_bytes) for p in places)
        calls.append(KernelCall(symbol[sub.workload_key], args))
    return calls


def _write_library(
    out: Path, part: Partition, plan: MemoryPlan, builds: list[TaskBuild]
) -> FileInfo:
    objects = {f"{b.symbol}.o": _object_code(b) for b in builds}
    objects["network.o"] = build_sequence(ENTRY, network_calls(part, plan, builds))
    graph = part.graph
    info = NetworkInfo(
        format_version=FORMAT_VERSION,
        inputs=tuple(TensorSpec(v.name, v.shape, v.dtype) for v in graph.inputs),
        outputs=tuple(TensorSpec(v.name, v.shape, v.dtype) for v in graph.outputs),
        weights_bytes=plan.weights_bytes,
        arena_bytes=plan.arena_bytes,
        weights_file=WEIGHTS_FILE,
        cpu_flags=tuple(dict.fromkeys(required_cpu_flags(host_target()).values())),
        cpu_name=host_target().cpu,
    )
    target = out / LIBRARY_FILE
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as work:
        partial = Path(work) / LIBRARY_FILE
        link_library(objects, info, partial, Path(work))
        os.replace(partial, target)
    blob = target.read_bytes()
    return FileInfo(len(blob), hashlib.sha256(blob).hexdigest())


def _object_code(b: TaskBuild) -> bytes:
    return build(lower(b.state, name=b.symbol), pic=True).object_code


def _write_weights(out: Path, graph: Graph, plan: MemoryPlan) -> FileInfo:
    """The constants at their planned offsets, zero-padded to 64 bytes."""
    digest = hashlib.sha256()
    partial = out / f".{WEIGHTS_FILE}.partial"
    with partial.open("wb") as f:
        for name in plan.constants:
            place = plan.placements[name]
            for chunk in (b"\0" * (place.offset_bytes - f.tell()), constant_bytes(graph, name)):
                f.write(chunk)
                digest.update(chunk)
        tail = b"\0" * (plan.weights_bytes - f.tell())
        f.write(tail)
        digest.update(tail)
    os.replace(partial, out / WEIGHTS_FILE)
    return FileInfo(plan.weights_bytes, digest.hexdigest())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(partial, path)
