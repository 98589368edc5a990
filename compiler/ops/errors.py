"""The one error type of the op library."""

from compiler.errors import UserError


class OpError(UserError):
    """An op was called with arguments it cannot take (shapes, axes, channels, dtypes).

    The message is one line naming the op, the argument and the shapes, e.g.
    "conv2d: input has 16 channels but the weight expects 8 (groups=1)".
    """
