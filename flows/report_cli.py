"""CLI command `report` (registered by flows/cli.py): rebuild a run directory's reports.

    sketchtune report DIR [--records DB] [--json]

Reads DIR/run.json, DIR/decisions.jsonl, the optional profile.json and bench.json
and the records database, and writes DIR/report.{csv,md,html} (and report.parquet
with pyarrow). A missing, empty or malformed run directory is a ReportError: one
line on stderr and exit code 2 (flows/cli.py). `--json` prints the written paths and the run's headline numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer


def report(
    run_dir: str = typer.Argument(..., help="A run directory (holds run.json)."),
    records: str | None = typer.Option(
        None, "--records", help="Records DB (default: the one run.json names)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Rebuild DIR/report.{csv,md,html} from the run's logs and records alone."""
    from reports import ReportError, load_run  # pandas and matplotlib: only when it runs
    from reports.build import run_peak, tables_of, write_reports

    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    run = load_run(path, records)
    peak = run_peak(run)
    tables = tables_of(run, peak)
    written = write_reports(run.path, tables, peak)
    for kind, file in written.items():
        typer.echo(f"{kind}: {file}", err=True)
    if as_json:
        head = tables["summary"].iloc[0].to_dict()
        out = {"run_dir": str(path), "reports": {k: str(v) for k, v in written.items()}}
        head = {k: _plain(v) for k, v in head.items()}
        typer.echo(json.dumps({**out, **head}))


def _plain(value: object) -> object:
    """numpy scalars as plain Python values, NaN as null (JSON has no NaN)."""
    value = getattr(value, "item", lambda: value)()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def register(app: typer.Typer) -> None:
    app.command("report")(report)
