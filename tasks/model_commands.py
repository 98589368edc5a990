"""The model commands behind the CLI: `zoo`, `tasks`, `bench` (plain functions, no Prefect).

Each returns the `--json` summary object (keys in docs/architecture.md#json-output) and writes human
output to stderr; a bad model raises `ModelError` (the CLI exits with code 2).
"""

from __future__ import annotations

import sys

from models import zoo
from models.errors import ModelError
from models.load import load_graph, load_proto, parse_input_shapes
from models.network import compile_network, passive_thread_wait
from models.partition import partition
from models.tuned import record_schedules

__all__ = ["ModelError", "bench_command", "tasks_command", "zoo_command"]


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def zoo_command() -> dict[str, object]:
    """The built-in example networks."""
    for m in zoo.ZOO.values():
        _say(f"zoo:{m.name:<14} {m.description}")
    return {"models": [{"name": f"zoo:{m.name}", "description": m.description}
                       for m in zoo.ZOO.values()]}  # fmt: skip


def tasks_command(model: str, *, input_shapes: list[str] | None = None) -> dict[str, object]:
    """The partition of `model`: distinct tasks with fused ops, shapes, weight and FLOPs."""
    graph = load_graph(model, parse_input_shapes(input_shapes or []))
    part = partition(graph)
    rows = [
        {
            "id": t.id,
            "ops": list(t.ops),
            "shapes": t.shapes,
            "weight": t.weight,
            "flops": t.flops,
            "workload_key": t.workload_key,
        }
        for t in part.tasks
    ]
    _say(f"{model}: {len(graph.nodes)} ops, {len(part.subgraphs)} subgraphs, {len(rows)} tasks")
    _say(f"{'ID':>3} | {'Task':<48} | {'Shapes':<40} | {'Weight':>6} | {'MFLOP':>9}")
    for r in rows:
        ops = "+".join(r["ops"])  # type: ignore[arg-type]
        shapes = " ".join("x".join(map(str, s)) for s in r["shapes"])  # type: ignore[attr-defined]
        _say(f"{r['id']:>3} | {ops[:48]:<48} | {shapes[:40]:<40} | {r['weight']:>6} | "
             f"{r['flops'] / 1e6:>9.2f}")  # type: ignore[operator]  # fmt: skip
    return {"model": model, "subgraphs": len(part.subgraphs), "tasks": rows}


def bench_command(
    model: str,
    *,
    threads: int = 1,
    records: str | None = None,
    compare_with: str = "onnxruntime",
    input_shapes: list[str] | None = None,
    rounds: int = 7,
) -> dict[str, object]:
    """Compile `model` (best records of `records`, else default schedules), time it next
    to onnxruntime on the same seeded input, compare outputs."""
    from models.compare import compare  # onnxruntime only here

    if compare_with != "onnxruntime":
        raise ModelError(f"--compare {compare_with!r}: only 'onnxruntime' is supported")
    if threads < 1:
        raise ModelError(f"--threads {threads}: must be at least 1")
    passive_thread_wait()
    shapes = parse_input_shapes(input_shapes or [])
    proto = load_proto(model)
    graph = load_graph(model, shapes)
    if records:
        schedules = record_schedules(records)
        net = compile_network(graph, schedule_for=schedules, tuned_keys=schedules.tuned)
    else:
        net = compile_network(graph)
    _say(f"{model}: {len(net.tasks)} tasks compiled in {net.compile_s:.1f} s")
    if shapes:
        _fix_proto_shapes(proto, shapes)
    result = compare(net, proto, threads=threads, rounds=rounds)
    _say(f"{model} on {threads} thread(s): ours {result.latency_ms:.3f} ms, onnxruntime "
         f"{result.onnxruntime_latency_ms:.3f} ms, onnxruntime/ours {result.ratio:.2f}x, "
         f"max rel err {result.max_rel_err:.2e}")  # fmt: skip
    return {
        "model": model,
        "threads": threads,
        "latency_ms": result.latency_ms,
        "onnxruntime_latency_ms": result.onnxruntime_latency_ms,
        "ratio": result.ratio,
        "max_abs_err": result.max_abs_err,
        "max_rel_err": result.max_rel_err,
        "tuned_tasks": len(net.tuned_keys),
        "untuned_tasks": len(net.tasks) - len(net.tuned_keys),
        "compile_s": net.compile_s,
    }


def _fix_proto_shapes(proto: object, shapes: dict[str, tuple[int, ...]]) -> None:
    """The same static input shapes for onnxruntime as for us."""
    for inp in proto.graph.input:  # type: ignore[attr-defined]
        if inp.name in shapes:
            inp.type.tensor_type.shape.ClearField("dim")
            for d in shapes[inp.name]:
                inp.type.tensor_type.shape.dim.add().dim_value = d


def compile_command(model: str, *, records: str, out: str) -> dict[str, object]:
    """Compile every task of `model` with its best record (default schedule where there
    is none) into DIR: one object file per task and DIR/network.json, the manifest
    (per task: workload key, tuned or not, the steps that replay its schedule)."""
    import json
    from pathlib import Path

    from compiler.codegen import build
    from compiler.lower.lower import lower
    from compiler.schedule.steps import steps_to_json

    schedules = record_schedules(records)
    part = partition(load_graph(model))
    out_dir = Path(out)
    (out_dir / "kernels").mkdir(parents=True, exist_ok=True)
    entries = []
    for task in part.tasks:
        state = schedules(task)
        artifact = build(lower(state, name=f"task{task.id}"))
        obj = out_dir / "kernels" / f"task{task.id}.o"
        obj.write_bytes(artifact.object_code)
        entries.append({
            "id": task.id, "ops": list(task.ops), "shapes": task.shapes,
            "workload_key": task.workload_key, "tuned": task.workload_key in schedules.tuned,
            "entry": artifact.entry, "object": str(obj.relative_to(out_dir)),
            "steps": steps_to_json(state.steps),
        })  # fmt: skip
    manifest = {"model": model, "records": records, "target": schedules.target, "tasks": entries}
    (out_dir / "network.json").write_text(json.dumps(manifest, indent=1))
    tuned = sum(e["tuned"] for e in entries)
    _say(f"{model}: {len(entries)} tasks compiled into {out_dir} ({tuned} from records)")
    return {"model": model, "out_dir": str(out_dir), "tasks": len(entries), "tuned_tasks": tuned,
            "untuned_tasks": len(entries) - tuned, "records": records}  # fmt: skip
