"""CLI commands for whole models: `zoo`, `tasks`, `bench`, `compile`, `run` (registered by
flows/cli.py).

The logic is in tasks/model_commands.py; here are only options and printing (a
bad model is a ModelError: one line and exit code 2, flows/cli.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.output import emit

# the commands import their logic (onnx, onnxruntime, the compiler) when they run

INPUT_SHAPE_HELP = (
    "Static shape for an input with dynamic dims: NAME=1,3,224,224 (repeatable, or several"
    ' in one quoted argument: "ids=1,128 mask=1,128").'
)
InputShapes = Annotated[list[str] | None, typer.Option("--input-shape", help=INPUT_SHAPE_HELP)]


def zoo(as_json: bool = typer.Option(False, "--json", help="Print a JSON object.")) -> None:
    """List the built-in example models (use them as zoo:NAME)."""
    from tasks.model_commands import zoo_command

    emit(zoo_command(), as_json)


def tasks(
    model: str = typer.Argument(..., help="MODEL.onnx or zoo:NAME"),
    input_shape: InputShapes = None,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """The partition: tuning tasks with fused ops, shapes, weights and FLOPs."""
    from tasks.model_commands import tasks_command

    emit(tasks_command(model, input_shapes=input_shape), as_json)


def bench(
    model: str = typer.Argument(..., help="MODEL.onnx or zoo:NAME"),
    records: str | None = typer.Option(
        None, "--records", help="Records DB: each task's best record, else the default schedule."
    ),
    compare: str = typer.Option("onnxruntime", "--compare", help="Reference runtime."),
    threads: int = typer.Option(1, "--threads", help="Threads for both contenders."),
    input_shape: InputShapes = None,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Compile MODEL and time it next to onnxruntime on the same seeded input."""
    from tasks.model_commands import bench_command

    emit(
        bench_command(
            model,
            threads=threads,
            records=records,
            compare_with=compare,
            input_shapes=input_shape,
        ),
        as_json,
    )


def compile_model(
    model: str = typer.Argument(..., help="MODEL.onnx or zoo:NAME"),
    records: str | None = typer.Option(
        None, "--records", help="Records DB: each task's best record, else the default schedule."
    ),
    out: str = typer.Option(..., "--out", help="The artifact directory to write."),
    input_shape: InputShapes = None,
    threads: int = typer.Option(
        1, "--threads", help="Take the records measured at this many threads per kernel."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Compile MODEL into one deployable artifact: model.so, weights.bin, network.json."""
    from tasks.model_commands import compile_command

    summary = compile_command(model, records=records, out=out, input_shapes=input_shape,
                              threads=threads)  # fmt: skip
    emit(summary, as_json)


def run_artifact(
    artifact: str = typer.Argument(..., help="An artifact directory (sketchtune compile)."),
    input_file: str = typer.Option(..., "--input", help=".npz with one array per input name."),
    output_file: str | None = typer.Option(None, "--output", help="Write the outputs (.npz)."),
    bench: bool = typer.Option(False, "--bench", help="Time repeated runs: median latency."),
    runs: int = typer.Option(50, "--runs", help="Timed runs with --bench."),
    threads: int = typer.Option(1, "--threads", help="Threads of the parallel loops."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Run a compiled artifact on the arrays of an .npz file (numpy runtime, no compiler)."""
    from tasks.model_commands import run_command

    summary = run_command(artifact, input_file=input_file, output_file=output_file, bench=bench,
                          threads=threads, runs=runs)  # fmt: skip
    emit(summary, as_json)


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_model)
    app.command("run")(run_artifact)
    app.command("zoo")(zoo)
    app.command("tasks")(tasks)
    app.command("bench")(bench)
