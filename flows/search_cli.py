"""CLI commands `tune-op`, `sketches` and `compare-spaces` (registered by flows/cli.py);
the logic is in tasks/search_commands.py and tasks/compare_spaces.py, the options
and their defaults in tasks/options.py."""

from __future__ import annotations

import typer

from flows import cli_options as o
from flows.output import emit
from tasks.options import OpTuneOptions, trial_budget

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
        trials: int | None = o.OP_TRIALS,
        minutes: float | None = o.MINUTES,
        records: str = o.RECORDS,
        policy: str = o.POLICY,
        tuner: str = o.TUNER,
        threads: int = o.THREADS,
        devices: str = o.DEVICES,
        seed: int = o.SEED,
        early_stopping: int | None = o.EARLY_STOPPING,
        per_round: int = o.per_round(D.per_round),
        baseline: bool = typer.Option(
            D.baseline, "--baseline/--no-baseline", help="Measure the default schedule first."
        ),
        search_ahead: bool = o.SEARCH_AHEAD,
        warm_start: bool = o.WARM_START,
        as_json: bool = o.JSON,
    ) -> None:
        """Tune one op into the records database and print the best schedule."""
        from tasks.search_commands import tune_op_command

        options = OpTuneOptions(
            op=op, shape=shape, trials=trial_budget(trials, minutes, D.trials), minutes=minutes,
            records=records, policy=policy, tuner=tuner,
            threads=threads, devices=devices, seed=seed, per_round=per_round,
            early_stopping=early_stopping, baseline=baseline, search_ahead=search_ahead,
            warm_start=warm_start,
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
        trials: int = o.trials(D.trials, "Measurements per policy."),
        threads: int = o.THREADS,
        records: str = typer.Option(None, "--records", help="Also keep every record here."),
        tuner: str = o.TUNER,
        seed: int = o.SEED,
        per_round: int = o.per_round(32),
        as_json: bool = o.JSON,
    ) -> None:
        """Template vs sketch search at the same budget: search or representation problem?"""
        from tasks.compare_spaces import compare_spaces_command

        options = OpTuneOptions(
            op=op, shape=shape, trials=trials, threads=threads, tuner=tuner, seed=seed,
            per_round=per_round,
        )  # fmt: skip
        emit(compare_spaces_command(options, keep_records=records), as_json)
