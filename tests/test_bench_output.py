"""The benchmark scripts' output rule (tests/bench/output.py): with `--json`, stdout is
exactly one JSON object, naming the machine under "machine", and the human table goes to
stderr; without it the table, headed by the machine line, is on stdout. Checked on the
cheapest script, bench_features.py with a few states (about a second a run), run as a
user runs it. (The scripts that time kernels are left out: on a loaded machine their
2-thread calls can take ten times as long.)"""

import json
import subprocess
import sys
from pathlib import Path

from compiler.target import host_summary

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "bench" / "bench_features.py"
ARGS = ["--states", "3", "--ops", "matmul512"]
# its table: a row per figure, `<key> <value>`
KEYS = [
    f"matmul512_{case}_{figure}"
    for case in ("random", "default")
    for figure in ("states_per_s", "lower_ms", "features_ms", "cached_states_per_s")
]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *ARGS, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def table_rows(text: str) -> list[str]:
    """The first word of every line after the machine line (which must be there)."""
    lines = text.splitlines()
    assert host_summary() in lines, text
    return [line.split()[0] for line in lines[lines.index(host_summary()) + 1 :] if line.split()]


def test_json_alone_on_stdout_table_on_stderr():
    done = run_bench("--json")
    figures = json.loads(done.stdout)  # the whole of stdout: one object and nothing else
    assert isinstance(figures, dict)
    assert figures.pop("machine") == host_summary()
    assert sorted(figures) == sorted(KEYS)
    rows = table_rows(done.stderr)
    assert all(key in rows for key in KEYS), done.stderr


def test_table_on_stdout_without_json():
    done = run_bench()
    assert done.stdout.splitlines()[0] == host_summary()
    rows = table_rows(done.stdout)
    assert all(key in rows for key in KEYS), done.stdout
    assert host_summary() not in done.stderr
