"""Where the benchmark scripts print (not a test module): the project's rule is that
`--json` prints one JSON object on stdout and nothing else, the human output (tables,
progress) going to stderr then; without `--json` the table goes to stdout.

    with human_output(args.json):  # prints the machine line first
        figures = ...              # measure, print the table
    if args.json:
        print_json(figures)        # adds "machine"
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator

from compiler.target import host_summary

__all__ = ["human_output", "print_json"]


@contextlib.contextmanager
def human_output(as_json: bool) -> Iterator[None]:
    """Print the machine (`host_summary()`) as the first line, then run the block. With
    `as_json` everything the block prints goes to stderr: `print` and also writes to file
    descriptor 1 (native code, child processes), so stdout is left to `print_json`."""
    if not as_json:
        print(host_summary(), flush=True)
        yield
        return
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            print(host_summary(), flush=True)
            yield
    finally:
        sys.stdout.flush()  # what was written to the real sys.stdout object went to fd 2
        sys.stderr.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)


def print_json(figures: dict) -> None:
    """`figures` as one JSON object on stdout, with the machine under "machine"."""
    print(json.dumps({"machine": host_summary(), **figures}), flush=True)
