"""The one error type of the runtime: a one-line message naming the file, input or feature.

It derives from `compiler.errors.UserError` when the compiler is installed, so the
`sketchtune` command line prints it as `error: ...` and exits with code 2; the
runtime copied alone (numpy only) falls back to ValueError, UserError's own base.
"""

from __future__ import annotations

try:
    from compiler.errors import UserError as _Base  # imports nothing else of the compiler
except ImportError:  # pragma: no cover - deploy/ shipped without the compiler
    _Base = ValueError  # type: ignore[assignment,misc]


class DeployError(_Base):
    """An artifact cannot be loaded (damaged, newer format, a CPU without a feature it
    needs) or an input does not fit; the message is one line."""
