"""The Prefect tasks of the `tune_model` flow: thin wrappers over tasks/ and models/.

Coarse on purpose: one task run per chunk of builds, per batch of measurements,
per task's sketch generation — never one per candidate (a task run costs
milliseconds). Sketch generation is bound to the tuning session: it gets the
session's key and runs in the flow's process; builds and measurements take
their candidates by value, so a Dask worker can run them (tasks/prefect_measure.py
hands them to the tuning loop). Measurements are never cached; import + partition is
cached by the model's content hash. Builds and measurements are retried when
their process dies (a lost Dask worker); bad input is not retried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from compiler.measure import (
    BuildResult,
    Device,
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    RunRequest,
)
from compiler.measure.runner import OnResult
from models.load import parse_input_shapes
from tasks.device import build_chunk_here, run_here
from tasks.partition_cache import cached_partition
from tasks.phase_clock import phase
from tasks.tuning_session import get_session


def _partition_key(_context: Any, parameters: dict[str, Any]) -> str:
    return f"sketchtune-partition-{parameters['digest']}"


@task(name="import-and-partition", cache_key_fn=_partition_key, persist_result=True)
def import_and_partition(model: str, digest: str, input_shapes: tuple[str, ...] = ()) -> str:
    """Import and partition `model` (cached by `digest`); the partition file's path."""
    with phase("partition"):
        return str(cached_partition(model, digest, input_shapes))


@task(name="generate-sketches", cache_policy=NO_CACHE)
def generate_sketches(session_key: str, idx: int) -> int:
    """Derive task idx's search space (its sketches or template); the sketch count."""
    with phase("sketches"):
        return get_session(session_key).make_policy(idx)


@task(name="build-chunk", cache_policy=NO_CACHE, persist_result=False, retries=2)
def build_chunk(inputs: list[MeasureInput], slot: int) -> list[BuildResult]:
    """Compile one chunk of candidates (object code comes back by value)."""
    with phase("build"):
        return build_chunk_here(inputs, slot)


@task(name="measure", cache_policy=NO_CACHE, persist_result=False, retries=2)
def measure_batch(
    requests: list[RunRequest],
    settings: MeasureSettings,
    devices: str | tuple[Device, ...] = "default",
    on_result: OnResult | None = None,
) -> list[MeasureResult]:
    """Time built candidates on this process's device(s), one after another;
    `on_result(index, result)` as each one finishes (in the flow's process only:
    the records are written as the results arrive)."""
    with phase("measure"):
        return run_here(requests, settings, devices, on_result)


@task(name="retime-finalists", cache_policy=NO_CACHE)
def retime_finalists(session_key: str) -> str:
    """Each task's best records re-timed side by side with its default schedule, so the
    network takes what is really fastest (models/retime.py); DIR/retime.json."""
    import json
    from dataclasses import asdict

    from models.retime import retime_tasks

    session = get_session(session_key)
    o = session.options
    with phase("retime"):
        results = retime_tasks(session.partition.tasks, session.store, finalists=o.retime,
                               threads=o.threads, say=_say)  # fmt: skip
    path = Path(o.out_dir, "retime.json")
    path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return str(path)


def _say(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


@task(name="export-artifact", cache_policy=NO_CACHE)
def export_artifact(
    model: str, records: str, out_dir: str, input_shapes: tuple[str, ...] = (), threads: int = 1
) -> dict:
    """The deployable artifact of the tuned network into DIR/artifact (docs/deploy.md)."""
    from models.artifact import export_artifact as export

    with phase("artifact"):
        shapes = parse_input_shapes(list(input_shapes))
        out = Path(out_dir, "artifact")
        return export(model, records, out, input_shapes=shapes, threads=threads).summary()


@task(name="compile-and-check", cache_policy=NO_CACHE)
def compile_and_check(
    model: str, records: str, threads: int, out_dir: str, input_shapes: tuple[str, ...] = ()
) -> dict:
    """Compile the network from the best records, check it against onnxruntime, time both."""
    import json

    from tasks.model_commands import bench_command

    with phase("check"):
        summary = bench_command(model, threads=threads, records=records,
                                input_shapes=list(input_shapes))  # fmt: skip
    Path(out_dir, "bench.json").write_text(json.dumps(summary, indent=1))
    return summary


@task(name="profile-network", cache_policy=NO_CACHE)
def profile_tasks(
    model: str, records: str, threads: int, out_dir: str, input_shapes: tuple[str, ...] = ()
) -> str:
    """Per-task times (tuned, default schedule, onnxruntime's nodes) into DIR/profile.json."""
    import json

    from models.ort_profile import profile_network

    path = Path(out_dir, "profile.json")
    with phase("profile"):
        shapes = parse_input_shapes(list(input_shapes))
        got = profile_network(model, records, threads, input_shapes=shapes)
        path.write_text(json.dumps(got, indent=1))
    return str(path)
