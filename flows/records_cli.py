"""CLI commands `records {show,best,export,import,distill} DB [FILE]` (registered by
flows/cli.py). The logic is in tasks/records_commands.py; a bad database or file
argument, or a damaged database, is a user error (one line, exit code 2: flows/cli.py).
Only `import` writes to DB; the other commands open it read-only."""

from __future__ import annotations

import typer

from flows.output import emit
from tasks.records_commands import (
    best_command,
    distill_command,
    export_command,
    import_command,
    show_command,
)

records_app = typer.Typer(
    help="The records database: show, best, export, import, distill.", no_args_is_help=True
)
DB = typer.Argument(..., help="The records database (SQLite file).")
FILE = typer.Argument(None, help="JSON-lines file (export/import) or new database (distill).")
JSON = typer.Option(False, "--json", help="Print a JSON object.")


@records_app.command("show")
def show(db: str = DB, as_json: bool = JSON) -> None:
    """A summary per workload: records, errors, best time."""
    emit(show_command(db), as_json)


@records_app.command("best")
def best(
    db: str = DB,
    target: str | None = typer.Option(None, "--target", help="Only records of this target."),
    as_json: bool = JSON,
) -> None:
    """The best valid record per workload and target."""
    emit(best_command(db, target=target), as_json)


@records_app.command("export")
def export(db: str = DB, file: str | None = FILE, as_json: bool = JSON) -> None:
    """Write every record to FILE as JSON lines."""
    emit(export_command(db, file), as_json)


@records_app.command("import")
def import_(db: str = DB, file: str | None = FILE, as_json: bool = JSON) -> None:
    """Add the records of a JSON-lines FILE; each malformed line is skipped, counted and named."""
    emit(import_command(db, file), as_json)


@records_app.command("distill")
def distill(db: str = DB, file: str | None = FILE, as_json: bool = JSON) -> None:
    """Copy only the best record per workload and target into a new database FILE."""
    emit(distill_command(db, file), as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(records_app, name="records")
