"""CLI commands `tune-op`, `sketches` and `compare-spaces` (registered by flows/cli.py);
the logic is in tasks/search_commands.py and tasks/compare_spaces.py. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import json
from collections.abc import Callable

import typer

# the commands import their logic when they run: `--help` and typos stay quick


def _run(fn: Callable[[], dict[str, object]], as_json: bool) -> None:
    from tasks.search_commands import SearchInputError

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
            ...,
            help="matmul, dense, conv2d, conv2d_nchwc, conv2d_winograd, depthwise_conv2d, "
            "softmax, layer_norm",
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
        baseline: bool = typer.Option(
            True, "--baseline/--no-baseline", help="measure the default schedule first"
        ),
        search_ahead: bool = typer.Option(
            True,
            "--search-ahead/--no-search-ahead",
            help="search the next round while this one is timed (when a core is idle)",
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout"),
    ) -> None:
        """Tune one op into the records database and print the best schedule."""
        from tasks.search_commands import tune_op_command

        _run(
            lambda: tune_op_command(
                op, shape, trials=trials, records=records, policy=policy, tuner=tuner,
                threads=threads, devices=devices, seed=seed, per_round=per_round,
                early_stopping=early_stopping or None, baseline=baseline,
                search_ahead=search_ahead,
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
        from tasks.search_commands import sketches_command

        _run(lambda: sketches_command(target, shape), as_json)

    @app.command("compare-spaces")
    def compare_spaces(
        op: str = typer.Argument(..., help="an op with a template: matmul, dense, conv2d, ..."),
        shape: str = typer.Option(..., "--shape", help="comma-separated sizes (see DESIGN.md)"),
        trials: int = typer.Option(64, "--trials", help="measurements per policy"),
        threads: int = typer.Option(0, "--threads", help="threads per candidate (0: all cores)"),
        records: str = typer.Option(None, "--records", help="also keep every record here"),
        tuner: str = typer.Option(
            "xgb", "--tuner", help="the template's tuner: grid, random, ga, xgb"
        ),
        seed: int = typer.Option(0, "--seed"),
        per_round: int = typer.Option(32, "--per-round", help="candidates per round and policy"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout"),
    ) -> None:
        """Template vs sketch search at the same budget: search or representation problem?"""
        from tasks.compare_spaces import compare_spaces_command

        _run(
            lambda: compare_spaces_command(
                op, shape, trials=trials, threads=threads, records=records, tuner=tuner,
                seed=seed, per_round=per_round,
            ),
            as_json,
        )  # fmt: skip
