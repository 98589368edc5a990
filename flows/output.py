"""What a command prints on stdout: with --json, its summary as one JSON object
and nothing else (human output goes to stderr)."""

from __future__ import annotations

import json

import typer


def emit(summary: dict[str, object], as_json: bool) -> None:
    """Print `summary` as one JSON line on stdout when `as_json`."""
    if as_json:
        typer.echo(json.dumps(summary))
