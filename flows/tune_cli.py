"""CLI commands that run the Prefect flow: `tune` and `nightly` (registered by flows/cli.py).

Human output (the live tuning table, or a line per round) goes to stderr, `--json`
prints one summary object on stdout. Each command makes one options object
(tasks/options.py: checked when made) and hands it to the flow; bad input exits 2
with one line (flows/cli.py), an internal failure exits 1.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import typer

from flows import cli_options as o
from flows.model_cli import InputShapes
from tasks.options import TuneOptions, trial_budget

# the commands import their logic when they run: `--help` and typos stay quick
D = TuneOptions  # the defaults live in the options class (tasks/options.py)
NIGHTLY_OUT = "runs/nightly"


def tune(
    model: str = o.MODEL,
    trials: int | None = o.TUNE_TRIALS,
    minutes: float | None = o.MINUTES,
    records: str = o.RECORDS,
    out: str = typer.Option(D.out_dir, "--out", help="Run directory (reports)."),
    policy: str = o.POLICY,
    tuner: str = o.TUNER,
    scheduler: str = o.SCHEDULER,
    threads: int = o.THREADS,
    devices: str = o.DEVICES,
    seed: int = o.SEED,
    per_round: int = o.per_round(D.per_round),
    early_stopping: int | None = o.EARLY_STOPPING,
    search_ahead: bool = o.SEARCH_AHEAD,
    warm_start: bool = o.WARM_START,
    task_runner: str = typer.Option(D.task_runner, "--task-runner", help="threads or dask."),
    dask_address: str | None = typer.Option(
        D.dask_address, "--dask-address", help="An existing Dask scheduler (tcp://host:8786)."
    ),
    dask_workers: int = typer.Option(
        D.dask_workers, "--dask-workers", help="LocalCluster workers."
    ),
    check: bool = typer.Option(D.check, "--check/--no-check", help="Compile and check at the end."),
    artifact: bool = typer.Option(
        D.artifact, "--artifact/--no-artifact", help="Also write the deployable artifact."
    ),
    retime: int = typer.Option(
        D.retime,
        "--retime",
        help="Finalists per task re-timed side by side with its default schedule (0: off).",
    ),
    input_shape: InputShapes = None,
    as_json: bool = o.JSON,
) -> None:
    """Tune a whole model with the Prefect flow; resumes from --records."""
    from flows import tune_model as flow_module
    from flows.progress import show_progress

    options = TuneOptions(
        model=model, trials=trial_budget(trials, minutes, D.trials), minutes=minutes,
        records=records, out_dir=out, policy=policy, tuner=tuner,
        scheduler=scheduler, threads=threads, devices=devices, seed=seed, per_round=per_round,
        early_stopping=early_stopping, search_ahead=search_ahead, task_runner=task_runner,
        dask_address=dask_address, dask_workers=dask_workers, check=check, retime=retime,
        artifact=artifact, warm_start=warm_start, input_shapes=tuple(input_shape or ()),
    )  # fmt: skip
    precheck(options)
    with ExitStack() as stack:
        flow = flow_module.tune_model
        if options.uses_dask:
            options = stack.enter_context(_dask_cluster(options))
            flow = _with_dask(flow, options.dask_address)
        stack.enter_context(show_progress(flow_module.LISTENERS))
        summary = flow(options)
    if as_json:
        typer.echo(json.dumps(summary))


def precheck(options: TuneOptions) -> None:
    """Bad input fails here, before Prefect starts (one line, exit code 2): the
    records database, a missing or unreadable model, an unsupported op (the
    options checked themselves when they were made). The partition is cached on
    disk, so the flow's import task finds it ready."""
    from tasks.partition_cache import cached_partition, model_digest

    options.check_records()
    shapes = options.input_shapes
    cached_partition(options.model, model_digest(options.model, shapes), shapes)


def _with_dask(flow, address: str):
    from prefect_dask import DaskTaskRunner

    return flow.with_options(task_runner=DaskTaskRunner(address=address))


class _DaskCluster:
    """The options' Dask scheduler, or a LocalCluster of `dask_workers` one-thread
    workers started for the run (its address and pinned cores in the options)."""

    def __init__(self, options: TuneOptions) -> None:
        self.options, self.cluster = options, None

    def __enter__(self) -> TuneOptions:
        if self.options.dask_address:
            return self.options
        import dask
        from distributed import LocalCluster

        # non-daemonic workers may spawn builder and runner processes (crash isolation)
        dask.config.set({"distributed.worker.daemon": False})
        self.cluster = LocalCluster(
            n_workers=self.options.dask_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        address = self.cluster.scheduler_address
        return replace(self.options, dask_address=address, pin_dask_cores=True)

    def __exit__(self, *exc: object) -> None:
        if self.cluster is not None:
            self.cluster.close()


def _dask_cluster(options: TuneOptions) -> _DaskCluster:
    return _DaskCluster(options)


def nightly(
    model: str = o.MODEL,
    cron: str = typer.Option("0 2 * * *", "--cron", help="When to run (cron, server time)."),
    trials: int | None = o.trials_or_minutes(D.trials, "New measurements per night"),
    minutes: float | None = o.MINUTES,
    records: str = o.RECORDS,
    out: str = typer.Option(NIGHTLY_OUT, "--out", help="Dated run directories go here."),
    policy: str = o.POLICY,
    tuner: str = o.TUNER,
    scheduler: str = o.SCHEDULER,
    threads: int = o.THREADS,
    input_shape: InputShapes = None,
    name: str | None = typer.Option(None, "--name", help="Deployment name."),
) -> None:
    """Serve a Prefect deployment of the tuning flow on a cron schedule (needs a server)."""
    from flows.nightly import nightly_deployment, serve_deployment

    out_dir = Path(out).resolve()
    options = TuneOptions(
        model=model, trials=trial_budget(trials, minutes, D.trials), minutes=minutes,
        records=str(Path(records).resolve()), out_dir=str(out_dir),
        policy=policy, tuner=tuner, scheduler=scheduler, threads=threads, dated=True,
        trend=str(out_dir / "trend.csv"), artifact=True, input_shapes=tuple(input_shape or ()),
    )  # fmt: skip
    precheck(options)
    deployment = nightly_deployment(options, cron=cron, name=name)
    typer.echo(
        f"serving deployment {deployment.name!r} (cron {cron!r}) at "
        f"{os.environ.get('PREFECT_API_URL')}; Ctrl-C stops",
        err=True,
    )
    serve_deployment(deployment)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
    app.command("nightly")(nightly)
