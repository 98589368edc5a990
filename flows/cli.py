"""The `sketchtune` command line: every command, and its one error handler.

A user error (compiler.errors.UserError: a bad option, model, shape, records
file or run directory) is caught here, once, for every command: one line
`error: ...` on stderr and exit code 2. A run that cannot go on (StoppedError: a
full disk, a runner that cannot start) is one line `stopped: ...` and exit code 1.
Anything else is an internal failure (exit code 1, with its traceback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

# before Prefect is imported: no telemetry calls to a network that is not there, and
# per-task-run INFO lines off (the live table shows progress); all overridable
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Prefect's temporary server (no PREFECT_API_URL) took 15 s to start here, 28 s with a
# new PREFECT_HOME (its database created): Prefect's 20 s default is too short
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import typer
from typer.core import TyperGroup

from compiler.errors import StoppedError, UserError
from flows import model_cli, records_cli, report_cli, search_cli, tune_cli
from flows.parent import ParentGone


class _Commands(TyperGroup):
    """The root command group: runs a command, turning a user error into one line."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        except StoppedError as err:
            typer.echo(f"stopped: {err}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="sketchtune",
    help="Auto-tune whole ONNX networks for this CPU.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
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


_CHILD = "SKETCHTUNE_TUNE_CHILD"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "tune" and not os.environ.get(_CHILD):
        sys.exit(_tune_in_own_session())
    try:
        app()
    except ParentGone:  # nobody is left to tell: the records are committed
        sys.exit(3)


def _tune_in_own_session() -> int:
    """Run `tune` in a child process of its own session, forwarding Ctrl-C to it alone.

    A terminal's Ctrl-C reaches its whole foreground process group: Prefect's
    temporary server and the builder and runner processes would die with it and
    the round in flight would be lost. In its own session the flow process gets
    the forwarded signal only: it finishes the current round, keeps every record,
    compiles and reports (a second Ctrl-C aborts).
    """
    cmd = [sys.executable, "-m", "flows.cli", *sys.argv[1:]]
    child = subprocess.Popen(  # no threads in this process yet: preexec_fn is safe
        cmd,
        env={**os.environ, _CHILD: "1"},
        start_new_session=True,
        preexec_fn=_stop_with_parent,  # noqa: PLW1509
    )

    def forward(signum: int, frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()


def _stop_with_parent() -> None:
    """In the child: if this CLI process dies (even by SIGKILL), the flow gets SIGHUP
    and stops at once, keeping what it recorded, instead of running on as an orphan
    (Linux prctl; flows/tune_model.py handles the signal)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGHUP)


if __name__ == "__main__":
    main()
