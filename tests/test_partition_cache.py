"""The partition cache (tasks/partition_cache.py): real files and real pickles.

A cache file is only unpickled when nobody but us could have written it; the cache
key changes when the code that builds a partition changes.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import compiler
from compiler.errors import UserError
from compiler.settings import override
from tasks import partition_cache as pc

MODEL = "zoo:mlp"
OTHER_UID = 12345


@pytest.fixture
def cache(tmp_path):
    """A fresh cache root (not yet created) in force for the test."""
    root = tmp_path / "cache"
    with override(cache_dir=root):
        yield root


@pytest.fixture(scope="module")
def digest() -> str:
    return pc.model_digest(MODEL)


@pytest.fixture(scope="module")
def keys() -> list[str]:
    """The workload keys of a partition built without the cache."""
    from models.load import load_graph
    from models.partition import partition

    return [t.workload_key for t in partition(load_graph(MODEL)).tasks]


class Planted:
    """Unpickling this creates the file `marker` (as any code could run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path, mode: int = 0o666) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Planted(marker)))
    os.chmod(path, mode)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_cached_reloaded_equal(cache, digest, keys):
    path = pc.cached_partition(MODEL, digest)
    assert path == cache / "partitions" / f"{digest}.pkl"
    first = pc.load_partition(path)
    assert [t.workload_key for t in first.tasks] == keys
    mtime = path.stat().st_mtime_ns
    assert pc.cached_partition(MODEL, digest) == path  # a hit: the file is not rewritten
    assert path.stat().st_mtime_ns == mtime
    assert [t.workload_key for t in pc.load_partition(str(path)).tasks] == keys


def test_modes_after_first_run(cache, digest):
    path = pc.cached_partition(MODEL, digest)
    assert mode(cache) == 0o700
    assert mode(cache / "partitions") == 0o700
    assert mode(path) == 0o600
    assert os.listdir(cache / "partitions") == [path.name]  # no temporary left behind


def test_env_variable_and_existing_0755_root(tmp_path, monkeypatch, digest, keys):
    root = tmp_path / "home-cache"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)  # made earlier by an older version: fine, not tightened
    monkeypatch.setenv("SKETCHTUNE_CACHE", str(root))
    path = pc.cached_partition(MODEL, digest)
    assert path.parent.parent == root
    assert mode(root) == 0o755
    assert mode(root / "partitions") == 0o700
    assert [t.workload_key for t in pc.load_partition(path).tasks] == keys


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: os.chmod(p, 0o666), id="world-writable"),
        pytest.param(lambda p: os.chmod(p, 0o620), id="group-writable"),
        pytest.param(lambda p: (os.chmod(p, 0o600), os.chown(p, OTHER_UID, OTHER_UID)), id="other-owner"),
    ],
)  # fmt: skip
def test_planted_pickle_not_unpickled_and_rebuilt(cache, tmp_path, digest, keys, capsys, spoil):
    marker = tmp_path / "marker"
    path = cache / "partitions" / f"{digest}.pkl"
    plant(path, marker)
    spoil(path)
    os.chmod(cache, 0o700)
    os.chmod(path.parent, 0o700)

    with pytest.raises(pc.UntrustedCacheFile, match="refusing to unpickle"):
        pc.load_partition(path)
    assert not marker.exists()

    assert pc.cached_partition(MODEL, digest) == path
    assert not marker.exists()
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warning) == 1 and str(path) in warning[0], warning
    st = os.lstat(path)  # replaced by ours
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.getuid(), 0o600)
    assert [t.workload_key for t in pc.load_partition(path).tasks] == keys
    assert not marker.exists()


def test_symlinked_cache_file_not_followed(cache, tmp_path, digest, keys, capsys):
    marker = tmp_path / "marker"
    target = tmp_path / "elsewhere.pkl"
    plant(target, marker, mode=0o600)  # ours and 0600, but reached through a link
    path = cache / "partitions" / f"{digest}.pkl"
    path.parent.mkdir(parents=True)
    os.chmod(cache, 0o700)
    path.symlink_to(target)
    with pytest.raises(pc.UntrustedCacheFile, match="symlink"):
        pc.load_partition(path)
    assert pc.cached_partition(MODEL, digest) == path
    assert "symlink" in capsys.readouterr().err
    assert not path.is_symlink()
    assert [t.workload_key for t in pc.load_partition(path).tasks] == keys
    assert not marker.exists()


def test_load_partition_refuses_a_directory(tmp_path):
    with pytest.raises(pc.UntrustedCacheFile, match="not a regular file"):
        pc.load_partition(tmp_path)


def test_our_own_file_loads_anywhere(tmp_path, keys):
    """load_partition checks the file, not where it lies (the path travels through Prefect)."""
    from models.load import load_graph
    from models.partition import partition

    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(partition(load_graph(MODEL))))
    os.chmod(path, 0o644)
    assert [t.workload_key for t in pc.load_partition(path).tasks] == keys


@pytest.mark.parametrize("which", ["root", "partitions"])
@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        pytest.param(lambda d: os.chmod(d, 0o777), ["writable by group or others", "chmod go-w"],
                     id="0777"),
        pytest.param(lambda d: os.chmod(d, 0o770), ["writable by group or others", "chmod go-w"],
                     id="0770"),
        pytest.param(lambda d: os.chown(d, OTHER_UID, OTHER_UID), [f"owned by uid {OTHER_UID}"],
                     id="other-owner"),
    ],
)  # fmt: skip
def test_unsafe_cache_dir_refused(cache, tmp_path, digest, which, spoil, words):
    marker = tmp_path / "marker"
    path = cache / "partitions" / f"{digest}.pkl"
    plant(path, marker, mode=0o600)  # would pass the file check: the directory fails first
    os.chmod(cache, 0o700)
    os.chmod(path.parent, 0o700)
    bad = cache if which == "root" else cache / "partitions"
    spoil(bad)
    with pytest.raises(pc.CacheDirError) as info:
        pc.cached_partition(MODEL, digest)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message
    assert f"cache directory {bad} is" in message
    assert "SKETCHTUNE_CACHE" in message
    for word in words:
        assert word in message
    assert not marker.exists()


def test_symlinked_partitions_dir_refused(cache, tmp_path, digest):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache.mkdir(mode=0o700)
    (cache / "partitions").symlink_to(elsewhere)
    with pytest.raises(pc.CacheDirError, match="not a directory"):
        pc.cached_partition(MODEL, digest)


def test_cli_exits_2_with_one_line(tmp_path, monkeypatch):
    from flows.cli import app

    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    monkeypatch.setenv("SKETCHTUNE_CACHE", str(root))
    db = tmp_path / "records.db"
    result = CliRunner().invoke(app, ["tune", MODEL, "--records", str(db), "--trials", "1"])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cache directory") and str(root) in lines[0]


def copy_package(tmp_path: Path) -> Path:
    src = Path(compiler.__file__).parent
    dst = tmp_path / "compiler"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_source_digest_follows_every_byte(tmp_path):
    tree = copy_package(tmp_path)
    before = pc.source_digest([tree])
    assert pc.source_digest([tree]) == before
    assert len(before) == 64

    settings_py = tree / "settings.py"
    text = settings_py.read_bytes()
    settings_py.write_bytes(text.replace(b"GIB = 1 << 30", b"GIB = 1 << 31", 1))
    changed = pc.source_digest([tree])
    assert changed != before
    settings_py.write_bytes(text)
    assert pc.source_digest([tree]) == before

    (tree / "schedule_extra.py").write_text("X = 1\n")  # a new module counts too
    assert pc.source_digest([tree]) != before
    (tree / "schedule_extra.py").unlink()

    (tree / "notes.txt").write_text("not code\n")  # only *.py counts
    assert pc.source_digest([tree]) == before

    moved = tree / "settings_moved.py"  # the path is hashed, not only the bytes
    settings_py.rename(moved)
    assert pc.source_digest([tree]) != before


def test_installed_code_digest_covers_compiler_and_models():
    import models
    from compiler.private_cache import package_digest

    roots = [Path(compiler.__file__).parent, Path(models.__file__).parent]
    # others may edit the tree meanwhile: the fresh digest matches one taken beside it
    before = pc.source_digest(roots)
    fresh = package_digest.__wrapped__("compiler", "models")
    assert fresh in (before, pc.source_digest(roots))
    assert pc.code_digest() == pc.code_digest()  # once a process
    assert fresh != pc.source_digest(roots[:1])


def test_model_digest_depends_on_the_code(tmp_path, monkeypatch):
    tree = copy_package(tmp_path)
    monkeypatch.setattr(pc, "code_digest", lambda: pc.source_digest([tree]))
    before = pc.model_digest(MODEL)
    path = tree / "settings.py"
    path.write_bytes(path.read_bytes() + b"\n# one more byte\n")
    after = pc.model_digest(MODEL)
    assert after != before
    assert pc.model_digest(MODEL) == after  # stable for the same code

    with override(cache_dir=tmp_path / "cache"):  # a new key: a new cache file
        first, second = pc.cached_partition(MODEL, before), pc.cached_partition(MODEL, after)
    assert first != second and first.is_file() and second.is_file()


def test_digest_must_be_a_sha256(cache):
    with pytest.raises(ValueError, match="not a sha256 digest"):
        pc.cached_partition(MODEL, "../" + "0" * 61)
