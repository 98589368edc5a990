"""The object cache: a program built once is loaded from disk the next time, a file
anyone else could have written is never used, and the key follows the code."""

from __future__ import annotations

import os

from candidates import default_variants, matmul_task

from compiler.build_cache import cached_build, program_key
from compiler.codegen import build
from compiler.lower.lower import lower
from compiler.measure.builder import build_candidate
from compiler.settings import override


def test_a_candidate_built_twice_is_built_once(tmp_path):
    task = matmul_task(32, 32, 32)
    state = default_variants(task, 1, seed=0)[0]
    with override(cache_dir=tmp_path):
        first = build_candidate(task, tuple(state.steps), None)
        (obj,) = (tmp_path / "objects").iterdir()
        assert oct(obj.stat().st_mode & 0o777) == "0o600"
        second = build_candidate(task, tuple(state.steps), None)
    assert first.artifact is not None and second.artifact == first.artifact
    assert second.build_s < first.build_s


def test_a_file_someone_else_could_write_is_rebuilt(tmp_path):
    task = matmul_task(16, 16, 16)
    state = default_variants(task, 1, seed=1)[0]
    calls = []

    def make():
        calls.append(1)
        return build(lower(state))

    with override(cache_dir=tmp_path):
        good = cached_build("k" * 64, make)
        path = tmp_path / "objects" / ("k" * 64 + ".obj")
        os.chmod(path, 0o666)  # writable by others: a planted file could be here
        again = cached_build("k" * 64, make)
        path.write_bytes(b"not an object file")  # ours, but not of our format
        os.chmod(path, 0o600)
        third = cached_build("k" * 64, make)
    assert len(calls) == 3  # built anew each time
    assert good.object_code == again.object_code == third.object_code


def test_the_key_covers_workload_steps_name_and_target():
    base = program_key("w", [{"kind": "split"}], "", "cpu")
    assert base == program_key("w", [{"kind": "split"}], "", "cpu")
    others = [program_key("v", [{"kind": "split"}], "", "cpu"),
              program_key("w", [{"kind": "fuse"}], "", "cpu"),
              program_key("w", [{"kind": "split"}], "task3", "cpu"),
              program_key("w", [{"kind": "split"}], "", "other-cpu")]  # fmt: skip
    assert base not in others and len(set(others)) == 4
