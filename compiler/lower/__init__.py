"""Lowering: a schedule state to the loop IR (compiler.lower.lower).

Importing this package registers the loop-nest printer (compiler.lower.printer) as
what `str(state)` writes: its loop extents come from lowering's bound inference, a
layer the schedule package does not import.
"""

from compiler.lower.printer import format_state
from compiler.schedule.state import set_state_formatter

set_state_formatter(format_state)
