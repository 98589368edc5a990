"""CLI commands `tune-op`, `sketches` and `compare-spaces` (registered by flows/cli.py);
the logic is in tasks/search_commands.py and tasks/compare_spaces.py, the options
and their defaults in tasks/options.py."""

from __future__ import annotations

import typer

from flows.output import emit
from tasks.options import OpTuneOptions

# the commands import their logic when they run: `--help` and typos stay quick
D = OpTuneOptions  # the defaults live in the options class
SHAPE_HELP = (
    "comma-separated sizes: matmul M,N,K; dense BATCH,IN,OUT; conv2d "
    "N,C,H,W,F,KH,KW,STRIDE,PAD[,DILATION,GROUPS]; conv2d_nchwc N,C,H,W,F,KH,KW,STRIDE,PAD; "
    "conv2d_winograd N,C,H,W,F,3,3,1,PAD[,TILE]; depthwise_conv2d N,C,H,W,KH,KW,STRIDE,PAD; "
    "softmax and layer_norm ROWS,COLS"
)
OPS_HELP = (
    "matmul, dense, conv2d, conv2d_nchwc, conv2d_winograd, depthwise_conv2d, softmax, layer_norm"
)


def register(app: typer.Typer) -> None:
    @app.command("tune-op")
    def tune_op(
        op: str = typer.Argument(..., help=OPS_HELP),
        shape: str = typer.Option(..., "--shape", help=SHAPE_HELP),
        trials: int = typer.Option(D.trials, "--trials", help="new measurements this run"),
        records: str = typer.Option(D.records, "--records", help="records database"),
        policy: str = typer.Option(D.policy, "--policy", help="sketch, template or random"),
        tuner: str = typer.Option(
            D.tuner, "--tuner", help="with --policy template: grid, random, ga or xgb"
        ),
        threads: int = typer.Option(D.threads, "--threads", help="threads per candidate"),
        devices: str = typer.Option(D.devices, "--devices", help="default or per-core"),
        seed: int = typer.Option(D.seed, "--seed"),
        early_stopping: int | None = typer.Option(
            D.early_stopping,
            "--early-stopping",
            help="stop after this many trials without a 1 % gain",
        ),
        per_round: int = typer.Option(D.per_round, "--per-round", help="candidates per round"),
        baseline: bool = typer.Option(
            D.baseline, "--baseline/--no-baseline", help="measure the default schedule first"
        ),
        search_ahead: bool = typer.Option(
            D.search_ahead,
            "--search-ahead/--no-search-ahead",
            help="search the next round while this one is timed (when a core is idle)",
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout"),
    ) -> None:
        """Tune one op into the records database and print the best schedule."""
        from tasks.search_commands import tune_op_command

        options = OpTuneOptions(
            op=op, shape=shape, trials=trials, records=records, policy=policy, tuner=tuner,
            threads=threads, devices=devices, seed=seed, per_round=per_round,
            early_stopping=early_stopping, baseline=baseline, search_ahead=search_ahead,
        )  # fmt: skip
        emit(tune_op_command(options), as_json)

    @app.command("sketches")
    def sketches(
        target: str = typer.Argument(..., help="an op name (with --shape) or a model"),
        shape: str = typer.Option(None, "--shape", help=SHAPE_HELP),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print each task's sketches as loop nests."""
        from tasks.search_commands import sketches_command

        emit(sketches_command(target, shape), as_json)

    @app.command("compare-spaces")
    def compare_spaces(
        op: str = typer.Argument(..., help="an op with a template: matmul, dense, conv2d, ..."),
        shape: str = typer.Option(..., "--shape", help=SHAPE_HELP),
        trials: int = typer.Option(D.trials, "--trials", help="measurements per policy"),
        threads: int = typer.Option(D.threads, "--threads", help="threads per candidate"),
        records: str = typer.Option(None, "--records", help="also keep every record here"),
        tuner: str = typer.Option(D.tuner, "--tuner", help="the template's tuner"),
        seed: int = typer.Option(D.seed, "--seed"),
        per_round: int = typer.Option(32, "--per-round", help="candidates per round and policy"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON summary on stdout"),
    ) -> None:
        """Template vs sketch search at the same budget: search or representation problem?"""
        from tasks.compare_spaces import compare_spaces_command

        options = OpTuneOptions(
            op=op, shape=shape, trials=trials, threads=threads, tuner=tuner, seed=seed,
            per_round=per_round,
        )  # fmt: skip
        emit(compare_spaces_command(options, keep_records=records), as_json)
