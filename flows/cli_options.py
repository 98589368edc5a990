"""The command-line options the tuning commands share (`tune`, `nightly`, `tune-op`,
`compare-spaces`), each written once; their defaults come from the options classes
(tasks/options.py), which check the values."""

from __future__ import annotations

import typer

from tasks.options import OpTuneOptions, SearchOptions, TuneOptions

S, T = SearchOptions, TuneOptions

MODEL = typer.Argument(..., help="MODEL.onnx or zoo:NAME")
RECORDS = typer.Option(S.records, "--records", help="Records database (SQLite).")
POLICY = typer.Option(S.policy, "--policy", help="sketch, template or random.")
TUNER = typer.Option(S.tuner, "--tuner", help="Template tuner: grid, random, ga or xgb.")
THREADS = typer.Option(S.threads, "--threads", help="Threads per measured kernel.")
DEVICES = typer.Option(S.devices, "--devices", help="default or per-core.")
SEED = typer.Option(S.seed, "--seed", help="Seed of every random choice.")
EARLY_STOPPING = typer.Option(
    S.early_stopping, "--early-stopping",
    help="Stop a task after this many trials without a 1 % gain.",
)  # fmt: skip
SEARCH_AHEAD = typer.Option(
    S.search_ahead, "--search-ahead/--no-search-ahead",
    help="Search the next round while this one is timed (when a core is idle).",
)  # fmt: skip
WARM_START = typer.Option(
    S.warm_start, "--warm-start/--no-warm-start",
    help="Start the cost model from every workload measured on this CPU (DB.features.npz).",
)  # fmt: skip
SCHEDULER = typer.Option(T.scheduler, "--scheduler", help="gradient or round-robin.")
JSON = typer.Option(False, "--json", help="Print one JSON summary on stdout.")


def trials(default: int, what: str = "New measurements this run.") -> typer.models.OptionInfo:
    return typer.Option(default, "--trials", help=what)


def trials_or_minutes(
    default: int, what: str = "New measurements this run"
) -> typer.models.OptionInfo:
    """`--trials` of the commands that also take `--minutes` (not given: None)."""
    return typer.Option(
        None, "--trials", help=f"{what} (default {default}; no limit with --minutes).",
        show_default=False,
    )  # fmt: skip


MINUTES = typer.Option(
    S.minutes, "--minutes",
    help="Start no round after this many minutes of tuning (then check and report).",
)  # fmt: skip


def per_round(default: int) -> typer.models.OptionInfo:
    return typer.Option(default, "--per-round", help="Candidates per round (at most).")


TUNE_TRIALS = trials_or_minutes(T.trials)
OP_TRIALS = trials_or_minutes(OpTuneOptions.trials)
