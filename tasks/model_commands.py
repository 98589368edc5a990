"""The model commands behind the CLI: `zoo`, `tasks`, `bench`, `compile`, `run` (plain
functions, no Prefect).

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

__all__ = ["ModelError", "bench_command", "compile_command", "run_command", "tasks_command",
           "zoo_command"]  # fmt: skip


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
        schedules = record_schedules(records, threads)
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


def compile_command(
    model: str, *, records: str | None, out: str, input_shapes: list[str] | None = None,
    threads: int = 1,
) -> dict[str, object]:  # fmt: skip
    """Compile `model` with each task's best record in `records` measured at `threads`
    threads (the default schedule where there is none, or everywhere without records)
    into the deployable artifact OUT: model.so, weights.bin, network.json, sketchtune.h
    (docs/deploy.md)."""
    from models.artifact import export_artifact

    if threads < 1:
        raise ModelError(f"--threads {threads}: must be at least 1")
    shapes = parse_input_shapes(input_shapes or [])
    info = export_artifact(model, records, out, input_shapes=shapes, threads=threads)
    _say(f"{model}: {info.tasks} tasks ({info.tuned_tasks} from records) compiled into {out} "
         f"in {info.compile_s:.1f} s: model.so {info.library_bytes / 1e3:.0f} kB, weights "
         f"{info.weights_bytes / 1e6:.1f} MB, arena {info.arena_bytes / 1e6:.1f} MB")  # fmt: skip
    return {**info.summary(), "records": records, "threads": threads}


def run_command(
    artifact: str,
    *,
    input_file: str,
    output_file: str | None = None,
    bench: bool = False,
    threads: int = 1,
    runs: int = 50,
) -> dict[str, object]:
    """Load the artifact with the numpy runtime (`deploy`), run it on the arrays of
    `input_file` (.npz, one array per input name), write the outputs to `output_file`
    (.npz); with `bench`, the median latency of `runs` more runs."""
    import statistics
    import time
    from dataclasses import asdict

    import numpy as np

    from deploy import Session

    if threads < 1 or runs < 1:
        raise ModelError(f"--threads {threads} --runs {runs}: both must be at least 1")
    passive_thread_wait()  # as bench does: other libraries' OpenMP workers sleep when idle
    feed = _read_npz(input_file)
    start = time.perf_counter()
    session = Session(artifact, threads=threads)
    loaded = time.perf_counter()
    outputs = session.run(None, feed)
    first = time.perf_counter()
    names = [o.name for o in session.get_outputs()]
    if output_file:
        np.savez(output_file, **dict(zip(names, outputs)))
    summary: dict[str, object] = {
        "artifact": artifact, "model": session.manifest.get("model"), "threads": threads,
        "inputs": [asdict(i) for i in session.get_inputs()],
        "outputs": [asdict(o) for o in session.get_outputs()], "output_file": output_file,
        "load_ms": (loaded - start) * 1e3, "first_run_ms": (first - loaded) * 1e3,
    }  # fmt: skip
    for o, y in zip(session.get_outputs(), outputs):
        _say(f"{o.name}: {o.type} {o.shape}, mean {float(np.mean(y)):.6g}"
             + (f" -> {output_file}" if output_file else ""))  # fmt: skip
    if bench:
        times_s = []
        for _ in range(runs):
            t = time.perf_counter()
            session.run(None, feed)
            times_s.append(time.perf_counter() - t)
        summary |= {"runs": runs, "latency_ms": statistics.median(times_s) * 1e3,
                    "latency_min_ms": min(times_s) * 1e3}  # fmt: skip
        _say(f"{artifact} on {threads} thread(s): median {summary['latency_ms']:.3f} ms over "
             f"{runs} runs (min {summary['latency_min_ms']:.3f} ms)")  # fmt: skip
    return summary


def _read_npz(path: str) -> dict[str, object]:
    """The arrays of an .npz file by name (ModelError when it cannot be read)."""
    import zipfile

    import numpy as np

    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        npz = np.load(path, allow_pickle=False)
    except unreadable as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise ModelError(f"--input {path}: cannot read the arrays ({reason})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ModelError(f"--input {path}: not an .npz archive (numpy.savez writes one)")
    try:
        with npz:
            return {name: npz[name] for name in npz.files}
    except unreadable as err:
        raise ModelError(f"--input {path}: cannot read the arrays ({err})") from None
