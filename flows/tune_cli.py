"""CLI commands that run the Prefect flow: `tune` and `nightly` (registered by flows/cli.py).

Human output (the live tuning table) goes to stderr, `--json` prints one summary
object on stdout. Bad input exits 2 with one line; an internal failure exits 1.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import typer

from models.errors import ModelError

# the commands import their logic when they run: `--help` and typos stay quick


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def tune(
    model: str = typer.Argument(..., help="MODEL.onnx or zoo:NAME"),
    trials: int = typer.Option(256, "--trials", help="New measurements this run."),
    records: str = typer.Option("runs/records.db", "--records", help="Records database."),
    out: str = typer.Option("runs/latest", "--out", help="Run directory (reports)."),
    policy: str = typer.Option("sketch", "--policy", help="sketch, template or random."),
    tuner: str = typer.Option("xgb", "--tuner", help="Template tuner: grid, random, ga, xgb."),
    scheduler: str = typer.Option("gradient", "--scheduler", help="gradient or round-robin."),
    threads: int = typer.Option(1, "--threads", help="Threads per measured kernel."),
    devices: str = typer.Option("default", "--devices", help="default or per-core."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice."),
    per_round: int = typer.Option(64, "--per-round", help="Candidates per search round."),
    early_stopping: int | None = typer.Option(
        None, "--early-stopping", help="Stop a task after this many trials without gain."
    ),
    search_ahead: bool = typer.Option(
        True,
        "--search-ahead/--no-search-ahead",
        help="Search the next round while this one is timed (when a core is idle).",
    ),
    task_runner: str = typer.Option("threads", "--task-runner", help="threads or dask."),
    dask_address: str | None = typer.Option(
        None, "--dask-address", help="An existing Dask scheduler (tcp://host:8786)."
    ),
    dask_workers: int = typer.Option(2, "--dask-workers", help="LocalCluster workers."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compile and check at the end."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Tune a whole model with the Prefect flow; resumes from --records."""
    from flows import tune_model as flow_module
    from flows.progress import live_table
    from tasks.tuning_session import TuneInputError

    if task_runner not in ("threads", "dask"):
        raise _fail(f"--task-runner must be threads or dask, got {task_runner!r}")
    if dask_address and task_runner != "dask":
        task_runner = "dask"
    params = {
        "model": model,
        "trials": trials,
        "records": records,
        "out_dir": out,
        "policy": policy,
        "tuner": tuner,
        "scheduler": scheduler,
        "threads": threads,
        "devices": devices,
        "seed": seed,
        "per_round": per_round,
        "early_stopping": early_stopping,
        "search_ahead": search_ahead,
        "check": check,
    }
    try:
        _precheck(params)
        with ExitStack() as stack:
            flow = flow_module.tune_model
            if task_runner == "dask":
                address, pin = stack.enter_context(_dask_cluster(dask_address, dask_workers))
                flow = _with_dask(flow, address)
                params.update(dask_address=address, pin_dask_cores=pin)
            stack.enter_context(live_table(flow_module.LISTENERS, enabled=not as_json))
            summary = flow(**params)
    except (ModelError, TuneInputError) as err:
        raise _fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(summary))


def _precheck(params: dict) -> None:
    """Bad input fails here, before Prefect starts (one line, exit code 2): the
    options, a missing or unreadable model, an unsupported op. The partition is
    cached on disk, so the flow's import task finds it ready."""
    from tasks.partition_cache import cached_partition, model_digest
    from tasks.tuning_session import RunOptions

    RunOptions(**{k: v for k, v in params.items() if k != "check"})
    cached_partition(params["model"], model_digest(params["model"]))


def _with_dask(flow, address: str):
    from prefect_dask import DaskTaskRunner

    return flow.with_options(task_runner=DaskTaskRunner(address=address))


class _DaskCluster:
    """An existing Dask scheduler, or a LocalCluster of `workers` one-thread workers."""

    def __init__(self, address: str | None, workers: int) -> None:
        self.address, self.workers, self.cluster = address, workers, None

    def __enter__(self) -> tuple[str, bool]:
        if self.address:
            return self.address, False
        import dask
        from distributed import LocalCluster

        from tasks.tuning_session import TuneInputError

        if self.workers < 1:
            raise TuneInputError(f"--dask-workers must be >= 1, got {self.workers}")
        # non-daemonic workers may spawn builder and runner processes (crash isolation)
        dask.config.set({"distributed.worker.daemon": False})
        self.cluster = LocalCluster(
            n_workers=self.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        return self.cluster.scheduler_address, True

    def __exit__(self, *exc: object) -> None:
        if self.cluster is not None:
            self.cluster.close()


def _dask_cluster(address: str | None, workers: int) -> _DaskCluster:
    return _DaskCluster(address, workers)


def nightly(
    model: str = typer.Argument(..., help="MODEL.onnx or zoo:NAME"),
    cron: str = typer.Option("0 2 * * *", "--cron", help="When to run (cron, server time)."),
    trials: int = typer.Option(256, "--trials", help="New measurements per night."),
    records: str = typer.Option("runs/records.db", "--records", help="Records database."),
    out: str = typer.Option("runs/nightly", "--out", help="Dated run directories go here."),
    policy: str = typer.Option("sketch", "--policy", help="sketch, template or random."),
    scheduler: str = typer.Option("gradient", "--scheduler", help="gradient or round-robin."),
    threads: int = typer.Option(1, "--threads", help="Threads per measured kernel."),
    name: str | None = typer.Option(None, "--name", help="Deployment name."),
) -> None:
    """Serve a Prefect deployment of the tuning flow on a cron schedule (needs a server)."""
    from flows.nightly import NightlyError, nightly_deployment, serve_deployment
    from tasks.tuning_session import TuneInputError

    try:
        _precheck(
            {
                "model": model,
                "trials": trials,
                "records": records,
                "out_dir": out,
                "policy": policy,
                "scheduler": scheduler,
                "threads": threads,
            }
        )
        deployment = nightly_deployment(
            model,
            cron=cron,
            trials=trials,
            records=str(Path(records).resolve()),
            out=str(Path(out).resolve()),
            policy=policy,
            scheduler=scheduler,
            threads=threads,
            name=name,
        )
    except (ModelError, TuneInputError, NightlyError) as err:
        raise _fail(str(err)) from None
    typer.echo(
        f"serving deployment {deployment.name!r} (cron {cron!r}) at "
        f"{os.environ.get('PREFECT_API_URL')}; Ctrl-C stops",
        err=True,
    )
    serve_deployment(deployment)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune)
    app.command("nightly")(nightly)
