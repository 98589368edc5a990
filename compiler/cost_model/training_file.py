"""The cost model's training data kept beside a records database (`<db>.features.npz`):
feature rows and costs of measured programs, per (target, workload), so a new model's
first round is searched by a model that has already learned from every workload
measured on this CPU (docs/search.md#warm-start).

    >>> data = read_training_file(path)            # None if missing; TrainingFileError
    >>> data.add(target, workload_key, ids, costs_s, rows)
    >>> write_training_file(path, data.capped())

A record stores a workload key and steps but not the DAG, so another workload's
programs cannot be featurized again from the database: the rows themselves are kept.

The file is a compressed `.npz` of plain numeric and string arrays (no object arrays),
read with `allow_pickle=False`, from a regular file owned by us and not writable by
group or others (compiler/private_cache.py); anything else is refused, never read.
A file of another feature layout (`FEATURES_VERSION`, the feature names) is stale:
ignored, and replaced by the next write. Writes are atomic (a 0600 temporary file,
then a rename), and `update_training_file` merges under a lock on the directory, so
two runs on one database both keep their programs.

Size: per workload the `KEEP_BEST` fastest programs and a fixed pseudo-random sample
of the rest (the smallest program ids: a stable sample, whatever the order of the
merges) up to `PER_WORKLOAD`; past `MAX_PROGRAMS` in all, the workloads updated
longest ago are dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import math
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.cost_model.layout import FEATURE_NAMES, N_FEATURES
from compiler.errors import UserError
from compiler.private_cache import UntrustedCacheFile, read_trusted

FORMAT = "sketchtune cost-model training data"
FILE_VERSION = 1
# bump when a feature row's meaning changes without its names changing (lowering, scaling)
FEATURES_VERSION = 1
SUFFIX = ".features.npz"

PER_WORKLOAD = 256  # programs kept per (target, workload)
KEEP_BEST = 64  # of which the fastest this many; the rest a stable sample
MAX_PROGRAMS = 20_000  # in the whole file (about 6.5 rows, 4.3 KB; 0.3 KB compressed)
MAX_FILE_BYTES = 1 << 30  # a larger file is not read

_ARRAYS = (
    "format", "file_version", "feature_digest", "targets", "workload_keys", "group_target",
    "group_updated", "group_start", "program_ids", "program_costs", "row_start", "rows",
)  # fmt: skip


class TrainingFileError(UserError):
    """A training-data file that is not to be read: another format, or not ours."""


class StaleTrainingFile(TrainingFileError):
    """A training-data file of another feature layout: ignored, replaced on write."""


def feature_digest() -> str:
    """What a row means: the feature names and `FEATURES_VERSION`."""
    text = f"{FEATURES_VERSION}\0{N_FEATURES}\0" + "\0".join(FEATURE_NAMES)
    return hashlib.sha256(text.encode()).hexdigest()


def training_path(records: str | Path) -> Path:
    """The training-data file beside the records database `records`."""
    records = Path(records)
    return records.with_name(records.name + SUFFIX)


@dataclass
class Group:
    """The kept programs of one workload measured on one target."""

    ids: list[str] = field(default_factory=list)  # steps hash (sha256 hex) of each program
    costs_s: list[float] = field(default_factory=list)  # mean seconds; inf: failed
    rows: list[np.ndarray] = field(default_factory=list)  # [n_stores, N_FEATURES] float32
    updated: float = 0.0  # when a program was last added (Unix time)

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, per_workload: int, keep_best: int) -> Group:
        """The fastest `keep_best` programs, then the smallest ids of the rest."""
        if len(self) <= per_workload:
            return self
        by_cost = sorted(range(len(self)), key=lambda i: (self.costs_s[i], self.ids[i]))
        best = [i for i in by_cost[:keep_best] if math.isfinite(self.costs_s[i])]
        taken = set(best)
        rest = sorted((i for i in range(len(self)) if i not in taken), key=lambda i: self.ids[i])
        chosen = sorted(best + rest[: per_workload - len(best)])
        return Group([self.ids[i] for i in chosen], [self.costs_s[i] for i in chosen],
                     [self.rows[i] for i in chosen], self.updated)  # fmt: skip


class TrainingData:
    """Programs per (target, workload key); one program per id and group."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], Group] = {}

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrainingData) or self.groups.keys() != other.groups.keys():
            return False
        for key, g in self.groups.items():
            h = other.groups[key]
            if g.ids != h.ids or g.costs_s != h.costs_s or g.updated != h.updated:
                return False
            if any(not np.array_equal(a, b) for a, b in zip(g.rows, h.rows, strict=True)):
                return False
        return True

    def add(
        self,
        target: str,
        workload_key: str,
        ids: Sequence[str],
        costs_s: Sequence[float],
        rows: Sequence[np.ndarray],
        updated: float | None = None,
    ) -> int:
        """Add programs (a known id gets the new cost and rows); how many were new."""
        group = self.groups.setdefault((target, workload_key), Group())
        where = {pid: i for i, pid in enumerate(group.ids)}
        new = 0
        for pid, cost, r in zip(ids, costs_s, rows, strict=True):
            r = np.asarray(r, dtype=np.float32).reshape(-1, N_FEATURES)
            cost = float(cost) if cost is not None and cost > 0 else math.inf
            if pid in where:
                group.costs_s[where[pid]], group.rows[where[pid]] = cost, r
                continue
            where[pid] = len(group.ids)
            group.ids.append(pid)
            group.costs_s.append(cost)
            group.rows.append(r)
            new += 1
        group.updated = max(group.updated, time.time() if updated is None else updated)
        return new

    def merge(self, other: TrainingData) -> None:
        """Add every program of `other` (its costs win for ids both hold)."""
        for (target, key), g in other.groups.items():
            self.add(target, key, g.ids, g.costs_s, g.rows, g.updated)

    def of_target(self, target: str) -> Iterator[tuple[str, Group]]:
        """(workload key, group) of every workload measured on `target`."""
        for (t, key), g in self.groups.items():
            if t == target and len(g):
                yield key, g

    def capped(
        self,
        per_workload: int = PER_WORKLOAD,
        keep_best: int = KEEP_BEST,
        max_programs: int = MAX_PROGRAMS,
    ) -> TrainingData:
        """A copy within the size limits (see the module docstring)."""
        out = TrainingData()
        total = 0
        newest_first = sorted(self.groups.items(), key=lambda kv: -kv[1].updated)
        for key, g in newest_first:
            kept = g.keep(per_workload, keep_best)
            if not len(kept) or total + len(kept) > max_programs:
                continue
            out.groups[key] = kept
            total += len(kept)
        out.groups = dict(sorted(out.groups.items()))
        return out


# ------------------------------------------------------------------ the file


def read_training_file(path: str | Path) -> TrainingData | None:
    """The training data in `path`; None if there is no such file. Raises
    TrainingFileError for a file not to be read (not ours, writable by others, a
    symlink, not such a file) and StaleTrainingFile for one of another feature layout."""
    path = Path(path)
    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        return None
    if size > MAX_FILE_BYTES:
        raise TrainingFileError(f"refusing to read {path}: {size} bytes, over {MAX_FILE_BYTES}")
    try:
        raw = read_trusted(path, "warm-start the cost model from")
    except UntrustedCacheFile as err:
        raise TrainingFileError(str(err)) from None
    except FileNotFoundError:
        return None
    except OSError as err:
        raise TrainingFileError(f"cannot read {path}: {err.strerror}") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAYS if name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise TrainingFileError(f"{path}: not a cost-model training file ({err})") from None
    return _from_arrays(path, arrays)


def write_training_file(path: str | Path, data: TrainingData) -> None:
    """Write `data` to `path` atomically, mode 0600 (a symlink at `path` is replaced,
    never followed)."""
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **_to_arrays(data))
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # exactly 0600 whatever the umask
            f.write(buf.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def update_training_file(path: str | Path, data: TrainingData) -> TrainingData:
    """Merge `data` into the file at `path` (created if missing; a stale one is
    replaced) under a lock, cap it and write it; what was written. A file not to be
    read raises TrainingFileError and is left as it is."""
    path = Path(path)
    with _dir_lock(path.parent):
        try:
            merged = read_training_file(path) or TrainingData()
        except StaleTrainingFile:
            merged = TrainingData()
        merged.merge(data)
        out = merged.capped()
        write_training_file(path, out)
    return out


@contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """An exclusive flock on `directory` (merges of one file take turns)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _to_arrays(data: TrainingData) -> dict[str, np.ndarray]:
    targets = sorted({t for t, _ in data.groups})
    t_index = {t: i for i, t in enumerate(targets)}
    keys, g_target, g_updated, g_start = [], [], [], [0]
    ids, costs, row_start, rows = [], [], [0], []
    for (target, key), g in sorted(data.groups.items()):
        keys.append(key)
        g_target.append(t_index[target])
        g_updated.append(g.updated)
        for pid, cost, r in zip(g.ids, g.costs_s, g.rows):
            ids.append(pid)
            costs.append(cost)
            rows.append(r)
            row_start.append(row_start[-1] + len(r))
        g_start.append(len(ids))
    return {
        "format": np.array(FORMAT),
        "file_version": np.array(FILE_VERSION, np.int64),
        "feature_digest": np.array(feature_digest()),
        "targets": np.array(targets, dtype=str),
        "workload_keys": np.array(keys, dtype=str),
        "group_target": np.array(g_target, np.int64),
        "group_updated": np.array(g_updated, np.float64),
        "group_start": np.array(g_start, np.int64),
        "program_ids": np.array(ids, dtype="S64"),
        "program_costs": np.array(costs, np.float64),
        "row_start": np.array(row_start, np.int64),
        "rows": (np.concatenate(rows) if rows else np.zeros((0, N_FEATURES))).astype(np.float32),
    }


def _from_arrays(path: Path, a: dict[str, np.ndarray]) -> TrainingData:
    def bad(why: str) -> TrainingFileError:
        return TrainingFileError(f"{path}: not a cost-model training file ({why})")

    missing = [n for n in _ARRAYS if n not in a]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    if a["format"].shape != () or str(a["format"]) != FORMAT:
        raise bad("another format")
    if a["file_version"].shape != () or int(a["file_version"]) != FILE_VERSION:
        raise StaleTrainingFile(f"{path}: file version {a['file_version']}, not {FILE_VERSION}")
    if str(a["feature_digest"]) != feature_digest():
        raise StaleTrainingFile(f"{path}: written by a version with other feature rows")
    _check_dtypes(a, bad)
    n_groups, n_programs = len(a["workload_keys"]), len(a["program_ids"])
    g_start, r_start, rows = a["group_start"], a["row_start"], a["rows"]
    if (
        a["group_target"].shape != (n_groups,)
        or a["group_updated"].shape != (n_groups,)
        or g_start.shape != (n_groups + 1,)
        or a["program_costs"].shape != (n_programs,)
        or r_start.shape != (n_programs + 1,)
        or rows.ndim != 2
        or rows.shape[1] != N_FEATURES
    ):
        raise bad("array shapes disagree")
    if not (_offsets_ok(g_start, n_programs) and _offsets_ok(r_start, len(rows))):
        raise bad("offsets out of order")
    g_target = a["group_target"]
    if n_groups and (g_target.min() < 0 or g_target.max() >= len(a["targets"])):
        raise bad("a group of no target")
    costs = a["program_costs"]
    if np.isnan(costs).any() or (costs <= 0).any() or not np.isfinite(rows).all():
        raise bad("costs or rows out of range")
    targets = [str(t) for t in a["targets"]]
    data = TrainingData()
    ids = [bytes(b).decode("ascii", "replace") for b in a["program_ids"]]
    for g in range(n_groups):
        lo, hi = int(g_start[g]), int(g_start[g + 1])
        group = Group(
            ids[lo:hi],
            [float(c) for c in costs[lo:hi]],
            [rows[r_start[i] : r_start[i + 1]] for i in range(lo, hi)],
            float(a["group_updated"][g]),
        )
        data.groups[(targets[int(a["group_target"][g])], str(a["workload_keys"][g]))] = group
    return data


def _check_dtypes(a: dict[str, np.ndarray], bad) -> None:
    kinds = {"targets": "U", "workload_keys": "U", "program_ids": "S", "format": "U",
             "feature_digest": "U"}  # fmt: skip
    for name, kind in kinds.items():
        if a[name].dtype.kind != kind:
            raise bad(f"{name} of dtype {a[name].dtype}")
    for name in ("group_target", "group_start", "row_start", "file_version"):
        if a[name].dtype.kind not in "iu":
            raise bad(f"{name} of dtype {a[name].dtype}")
    for name in ("group_updated", "program_costs", "rows"):
        if a[name].dtype.kind != "f":
            raise bad(f"{name} of dtype {a[name].dtype}")


def _offsets_ok(starts: np.ndarray, end: int) -> bool:
    return bool(starts[0] == 0 and starts[-1] == end and (np.diff(starts) >= 0).all())


def describe(data: TrainingData | None, target: str) -> tuple[int, int]:
    """(programs, workloads) of `target` in `data`."""
    if data is None:
        return 0, 0
    groups = [g for _, g in data.of_target(target)]
    return sum(len(g) for g in groups), len(groups)
