"""CLI commands `tune-op` and `sketches` (registered by flows/cli.py); the logic is in
tasks/search_commands.py. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import json
from collections.abc import Callable

import typer

from tasks.search_commands import SearchInputError, sketches_command, tune_op_command


def _run(fn: Callable[[], dict[str, object]], as_json: bool) -> None:
    try:
        summary = fn()
    except SearchInputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    @app.command("tune-op")
    def tune_op(
        op: str = typer.Argument(
            ..., help="matmul, dense, conv2d, depthwise_conv2d, softmax, layer_norm"
        ),
        shape: str = typer.Option(..., "--shape", help="comma-separated sizes (see DESIGN.md)"),
        trials: int = typer.Option(64, "--trials", help="new measurements this run"),
        records: str = typer.Option("runs/records.db", "--records", help="records database"),
        policy: str = typer.Option("sketch", "--policy", help="sketch, template or random"),
        tuner: str = typer.Option(
            "xgb", "--tuner", help="with --policy template: grid, random, ga or xgb"
        ),
        threads: int = typer.Option(0, "--threads", help="threads per candidate (0: all cores)"),
        devices: str = typer.Option("default", "--devices", help="default or per-core"),
        seed: int = typer.Option(0, "--seed"),
        early_stopping: int = typer.Option(
            0, "--early-stopping", help="stop after this many trials without gain (0: never)"
        ),
        per_round: int = typer.Option(64, "--per-round", help="candidates measured per round"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout"),
    ) -> None:
        """Tune one op into the records database and print the best schedule."""
        _run(
            lambda: tune_op_command(
                op, shape, trials=trials, records=records, policy=policy, tuner=tuner,
                threads=threads, devices=devices, seed=seed, per_round=per_round,
                early_stopping=early_stopping or None,
            ),
            as_json,
        )  # fmt: skip

    @app.command("sketches")
    def sketches(
        target: str = typer.Argument(..., help="an op name (with --shape) or a model"),
        shape: str = typer.Option(None, "--shape", help="op sizes (see DESIGN.md)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print each task's sketches as loop nests."""
        _run(lambda: sketches_command(target, shape), as_json)
