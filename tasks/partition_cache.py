"""Import + partition of a model, cached on disk by the model's content hash.

The Prefect task that wraps `cached_partition` is cached by the same digest, so a
rerun of a model skips the import; the cache file is what the flow loads (a path
travels through Prefect, never the partition with its weights).

The key (`model_digest`) covers the model's bytes, the tool version and the source of
the code that builds a partition (every `*.py` of the `compiler` and `models`
packages, `code_digest`), so a changed partitioner misses the cache without anyone
bumping a format tag.

A cache file is a pickle, and unpickling runs code: nothing is unpickled that another
user could have written. The directories are made 0700 and the files 0600; a file
is trusted only if it is a regular file (not a symlink) owned by us and not writable
by group or others, checked on the open file (fstat) that is then read. A file that
fails is a miss (one warning line, rebuilt and replaced); a cache directory that
fails (another owner, writable by group or others, a symlink) is a `CacheDirError`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import re
import stat
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import compiler
import models
from compiler.errors import UserError
from compiler.records.record import tool_version
from compiler.settings import settings
from models.load import load_graph, load_proto
from models.partition import Partition, partition

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not block us


class CacheDirError(UserError):
    """A cache directory another user could write to (or not ours, or not a directory)."""


class UntrustedCacheFile(UserError):
    """A cache file another user could have written: it is never unpickled."""


def cache_dir() -> Path:
    """`$SKETCHTUNE_CACHE` or ~/.cache/sketchtune."""
    return settings().cache_dir


def source_digest(roots: Iterable[Path]) -> str:
    """sha256 of every `*.py` under each root, in the order of their paths relative to
    the root's parent (`compiler/x.py`), hashing each path and its bytes."""
    files: list[tuple[str, Path]] = []
    for root in roots:
        root = Path(root)
        files += [(p.relative_to(root.parent).as_posix(), p) for p in root.rglob("*.py")]
    h = hashlib.sha256()
    for rel, path in sorted(files):
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@cache
def code_digest() -> str:
    """`source_digest` of the installed `compiler` and `models` packages, once a process."""
    return source_digest(Path(pkg.__file__).parent for pkg in (compiler, models))


def model_digest(spec: str) -> str:
    """sha256 of the model's serialized bytes (a zoo model is built in code first), the
    tool version and the code that partitions it, so a changed file or a changed
    partitioner misses the cache."""
    h = hashlib.sha256(load_proto(spec).SerializeToString(deterministic=True))
    h.update(tool_version().encode())
    h.update(code_digest().encode())
    return h.hexdigest()


def cached_partition(spec: str, digest: str | None = None) -> Path:
    """The path of the pickled partition of `spec`, importing it on a cache miss (or
    when the file there is not one we can trust, which is replaced)."""
    digest = digest or model_digest(spec)
    if not re.fullmatch(r"[0-9a-f]{64}", digest):  # it names a file: no "../"
        raise ValueError(f"not a sha256 digest: {digest!r}")
    parts = cache_dir() / "partitions"
    name = f"{digest}.pkl"
    dfd = _open_cache_dir(parts)
    try:
        problem = _file_problem(name, dfd)
        if problem is None:
            return parts / name
        if problem != "missing":
            print(f"warning: ignoring cache file {parts / name}: {problem}; rebuilding it",
                  file=sys.stderr)  # fmt: skip
        part = partition(load_graph(spec))
        _write(dfd, parts, name, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        os.close(dfd)
    return parts / name


def load_partition(path: str | Path) -> Partition:
    """The partition pickled at `path`, which must be a regular file owned by us and
    not writable by group or others (else `UntrustedCacheFile`, and it is not read)."""
    path = Path(path)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise UntrustedCacheFile(f"refusing to unpickle {path}: a symlink") from None
    try:
        problem = _stat_problem(os.fstat(fd), "file")
        if problem is not None:
            raise UntrustedCacheFile(f"refusing to unpickle {path}: {problem}; delete it")
        data = _read_all(fd)
    finally:
        os.close(fd)
    return pickle.loads(data)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 24):
        chunks.append(chunk)
    return b"".join(chunks)


def _stat_problem(st: os.stat_result, kind: str) -> str | None:
    """Why a file or directory with stat `st` is not to be trusted (None: it is)."""
    want = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    if not want(st.st_mode):
        return f"not a {'directory' if kind == 'directory' else 'regular file'}"
    if st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _file_problem(name: str, dfd: int) -> str | None:
    """Why the cache file `name` in directory `dfd` cannot be used: "missing", or why
    it is not to be trusted; None if it is fine."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        return "missing"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symlink"
        if err.errno == errno.EISDIR:
            return "not a regular file"
        return f"cannot be opened ({err.strerror})"
    try:
        return _stat_problem(os.fstat(fd), "file")
    finally:
        os.close(fd)


def _open_cache_dir(parts: Path) -> int:
    """A descriptor of the `partitions/` directory, made 0700 (and the cache root) if
    missing; either one that another user could write to raises `CacheDirError`. The
    root may be a symlink (its target is checked); `partitions/` may not."""
    root = parts.parent
    fix = "set SKETCHTUNE_CACHE to a directory of your own"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        rfd = os.open(root, _DIR_FLAGS)
    except OSError as err:
        raise CacheDirError(f"cache directory {root}: {err.strerror}: {fix}") from None
    try:
        _check_dir(root, os.fstat(rfd), fix)
        try:
            os.mkdir(parts.name, 0o700, dir_fd=rfd)
        except FileExistsError:
            pass
        try:
            pfd = os.open(parts.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=rfd)
        except OSError as err:
            symlink = err.errno in (errno.ELOOP, errno.ENOTDIR)
            what = "not a directory (a symlink?)" if symlink else err.strerror
            raise CacheDirError(f"cache directory {parts}: {what}: remove it or {fix}") from None
    finally:
        os.close(rfd)
    try:
        _check_dir(parts, os.fstat(pfd), fix)
    except BaseException:
        os.close(pfd)
        raise
    return pfd


def _check_dir(path: Path, st: os.stat_result, fix: str) -> None:
    problem = _stat_problem(st, "directory")
    if problem is not None:
        chmod = f"run `chmod go-w {path}` or " if problem.startswith("writable") else ""
        raise CacheDirError(f"cache directory {path} is {problem}, so no partition is "
                            f"read from it: {chmod}{fix}")  # fmt: skip


def _write(dfd: int, parts: Path, name: str, data: bytes) -> None:
    """Write `data` to `name` in directory `dfd` atomically (a temporary file 0600 in
    the same directory, then a rename): a concurrent reader sees all or nothing."""
    tmp = f"{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
            f.write(data)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException as err:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        if isinstance(err, IsADirectoryError):  # a directory squats the file's name
            raise CacheDirError(f"cannot replace {parts / name}: a directory; remove it") from None
        raise
