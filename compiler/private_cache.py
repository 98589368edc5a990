"""Caches on disk that nobody else could have written.

What a cache holds is run: a partition is unpickled, object code is loaded and
called. So a cache file is used only if it is a regular file (not a symlink)
owned by us and not writable by group or others, checked on the open file that
is then read; directories are made 0700 and files 0600 (written to a temporary
file, then renamed, so a reader sees all or nothing). A file that fails the
check is a miss; a directory that fails it is a `CacheDirError`, one line
naming it and the fix. Keys that must change with the code hash its sources
(`package_digest`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Self

from compiler.errors import UserError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not block us
FIX = "set SKETCHTUNE_CACHE to a directory of your own"


class CacheDirError(UserError):
    """A cache directory another user could write to (or not ours, or not a directory)."""


class UntrustedCacheFile(UserError):
    """A cache file another user could have written: it is never used."""


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
def package_digest(*packages: str) -> str:
    """`source_digest` of the installed packages named, once a process (a few ms)."""
    return source_digest(Path(import_module(p).__file__).parent for p in packages)


class PrivateDir:
    """An open cache directory `path` (and its parent, the cache root), made 0700 if
    missing and checked; `read` and `write` files in it. Use with `with`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fd = _open_private_dir(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def problem(self, name: str) -> str | None:
        """Why the file `name` cannot be used: "missing", or why it is not to be
        trusted; None if it is fine."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return "missing"
        except OSError as err:
            return _open_problem(err)
        try:
            return _stat_problem(os.fstat(fd), "file")
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes | None:
        """The bytes of `name` if it is there and trusted, else None."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError:
            return None
        try:
            return _read_all(fd) if _stat_problem(os.fstat(fd), "file") is None else None
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        """Write `data` to `name` atomically (a temporary file 0600, then a rename)."""
        tmp = f"{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
                f.write(data)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as err:
            try:
                os.unlink(tmp, dir_fd=self.fd)
            except OSError:
                pass
            if isinstance(err, IsADirectoryError):  # a directory squats the file's name
                raise CacheDirError(
                    f"cannot replace {self.path / name}: a directory; remove it"
                ) from None
            raise


def read_trusted(path: str | Path, what: str = "use") -> bytes:
    """The bytes of the file at `path`, which must be a regular file owned by us and
    not writable by group or others (else UntrustedCacheFile, and it is not read)."""
    path = Path(path)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno != errno.ELOOP:
            raise
        raise UntrustedCacheFile(f"refusing to {what} {path}: a symlink") from None
    try:
        problem = _stat_problem(os.fstat(fd), "file")
        if problem is not None:
            raise UntrustedCacheFile(f"refusing to {what} {path}: {problem}; delete it")
        return _read_all(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 24):
        chunks.append(chunk)
    return b"".join(chunks)


def _open_problem(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "a symlink"
    if err.errno == errno.EISDIR:
        return "not a regular file"
    return f"cannot be opened ({err.strerror})"


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


def _open_private_dir(path: Path) -> int:
    """A descriptor of the directory `path`, made 0700 (and its parent, the cache root)
    if missing; either one that another user could write to raises CacheDirError.
    The root may be a symlink (its target is checked); `path` itself may not."""
    root = path.parent
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        rfd = os.open(root, _DIR_FLAGS)
    except OSError as err:
        raise CacheDirError(f"cache directory {root}: {err.strerror}: {FIX}") from None
    try:
        _check_dir(root, os.fstat(rfd))
        try:
            os.mkdir(path.name, 0o700, dir_fd=rfd)
        except FileExistsError:
            pass
        try:
            fd = os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=rfd)
        except OSError as err:
            symlink = err.errno in (errno.ELOOP, errno.ENOTDIR)
            what = "not a directory (a symlink?)" if symlink else err.strerror
            raise CacheDirError(f"cache directory {path}: {what}: remove it or {FIX}") from None
    finally:
        os.close(rfd)
    try:
        _check_dir(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_dir(path: Path, st: os.stat_result) -> None:
    problem = _stat_problem(st, "directory")
    if problem is not None:
        chmod = f"run `chmod go-w {path}` or " if problem.startswith("writable") else ""
        raise CacheDirError(f"cache directory {path} is {problem}, so nothing is read "
                            f"from it: {chmod}{FIX}")  # fmt: skip
