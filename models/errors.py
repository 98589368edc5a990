"""The one error type users see for a bad model: one line, naming the file and node."""

from __future__ import annotations

from compiler.errors import UserError


class ModelError(UserError):
    """A model cannot be imported or run (bad file, unsupported op, dynamic shape, dtype).

    The message is one line that names the file and, where there is one, the
    node (name, op type, index); the CLI prints it and exits with code 2.
    """
