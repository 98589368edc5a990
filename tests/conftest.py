"""Test configuration: benchmark scripts import their helpers (`timing`) from tests/bench."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "bench"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how many onnx backend node tests passed (the issue asks for the count)."""
    passed = terminalreporter.stats.get("passed", [])
    node = [r for r in passed if "test_onnx_backend.py" in r.nodeid]
    if node:
        terminalreporter.write_line(f"onnx backend node tests passed: {len(node)}")
