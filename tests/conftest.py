"""Test configuration: benchmark scripts import their helpers (`timing`) from tests/bench."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "bench"))
