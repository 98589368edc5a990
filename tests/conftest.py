"""Test configuration: benchmark scripts import their helpers (`timing`) from tests/bench."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "bench"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how many onnx backend node tests passed (the issue asks for the count)."""
    passed = terminalreporter.stats.get("passed", [])
    node = [r for r in passed if "test_onnx_backend.py" in r.nodeid]
    if node:
        terminalreporter.write_line(f"onnx backend node tests passed: {len(node)}")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A temporary Prefect server (its own database) for the tests that run flows."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ["SKETCHTUNE_CACHE"] = str(tmp_path_factory.mktemp("sketchtune-cache"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
