"""The one base class of the errors a user causes: bad input, never a bug.

Every error the command line should show as one line (and exit code 2) derives
from `UserError`: a bad option, model, shape, records file or run directory.
A run that cannot go on through no fault of its input (a full disk, a runner
that cannot start) raises a `StoppedError`: one line too, exit code 1. The CLI
catches both once, at its root (flows/cli.py); anything else is an internal
failure and keeps its traceback (exit code 1).
"""


class UserError(ValueError):
    """Bad input; the message is one line naming the file, node, op or option."""


class StoppedError(RuntimeError):
    """The run stopped and cannot go on; the message is one line naming the cause
    and what was kept (committed records, a file of the results not written)."""
