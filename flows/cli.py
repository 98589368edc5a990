"""The `sketchtune` command line (DESIGN.md names every command)."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# before Prefect is imported: no telemetry calls to a network that is not there, and
# per-task-run INFO lines off (the live table shows progress); both overridable
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import typer

from flows import model_cli, records_cli, report_cli, search_cli, tune_cli

app = typer.Typer(
    name="sketchtune",
    help="Auto-tune whole ONNX networks for this CPU.",
    no_args_is_help=True,
    add_completion=False,
)


def _version() -> str:
    try:
        return version("sketchtune")
    except PackageNotFoundError:  # running from a source tree
        return "0.1.0+src"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sketchtune {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """sketchtune: sketches, templates, LLVM and Prefect."""


model_cli.register(app)  # zoo, tasks, bench
records_cli.register(app)  # records show/best/export/import/distill
search_cli.register(app)  # tune-op, sketches
report_cli.register(app)  # report
tune_cli.register(app)  # tune, nightly (the Prefect flow)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
