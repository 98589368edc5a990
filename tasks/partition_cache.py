"""Import + partition of a model, cached on disk by the model's content hash.

The Prefect task that wraps `cached_partition` is cached by the same digest, so a
rerun of a model skips the import; the cache file is what the flow loads (a path
travels through Prefect, never the partition with its weights).

The key (`model_digest`) covers the model's bytes, the tool version and the source of
the code that builds a partition (every `*.py` of the `compiler` and `models`
packages, `code_digest`), so a changed partitioner misses the cache without anyone
bumping a format tag.

A cache file is a pickle, and unpickling runs code: nothing is unpickled that another
user could have written (compiler/private_cache.py: directories 0700, files 0600, a
file trusted only if it is ours and nobody else may write it). A file that fails is
a miss (one warning line, rebuilt and replaced); a cache directory that fails is a
`CacheDirError`.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from compiler.private_cache import (
    CacheDirError,
    PrivateDir,
    UntrustedCacheFile,
    package_digest,
    read_trusted,
    source_digest,
)
from compiler.records.record import tool_version
from compiler.settings import settings
from models.load import load_graph, load_proto, parse_input_shapes
from models.partition import Partition, partition

__all__ = [  # the cache's errors and digests are part of this module's interface
    "CacheDirError",
    "UntrustedCacheFile",
    "cache_dir",
    "cached_partition",
    "code_digest",
    "load_partition",
    "model_digest",
    "source_digest",
]


def cache_dir() -> Path:
    """`$SKETCHTUNE_CACHE` or ~/.cache/sketchtune."""
    return settings().cache_dir


def code_digest() -> str:
    """`source_digest` of the installed `compiler` and `models` packages, once a process."""
    return package_digest("compiler", "models")


def model_digest(spec: str, input_shapes: Sequence[str] = ()) -> str:
    """sha256 of the model's serialized bytes (a zoo model is built in code first), its
    --input-shape bindings, the tool version and the code that partitions it, so a
    changed file, shape or partitioner misses the cache."""
    h = hashlib.sha256(load_proto(spec).SerializeToString(deterministic=True))
    h.update(repr(sorted(input_shapes)).encode())
    h.update(tool_version().encode())
    h.update(code_digest().encode())
    return h.hexdigest()


def cached_partition(
    spec: str, digest: str | None = None, input_shapes: Sequence[str] = ()
) -> Path:
    """The path of the pickled partition of `spec` (its dynamic dims bound by
    `input_shapes`, NAME=1,128 each), importing it on a cache miss (or when the file
    there is not one we can trust, which is replaced)."""
    digest = digest or model_digest(spec, input_shapes)
    if not re.fullmatch(r"[0-9a-f]{64}", digest):  # it names a file: no "../"
        raise ValueError(f"not a sha256 digest: {digest!r}")
    name = f"{digest}.pkl"
    with PrivateDir(cache_dir() / "partitions") as parts:
        problem = parts.problem(name)
        if problem is None:
            return parts.path / name
        if problem != "missing":
            print(f"warning: ignoring cache file {parts.path / name}: {problem}; rebuilding it",
                  file=sys.stderr)  # fmt: skip
        part = partition(load_graph(spec, parse_input_shapes(list(input_shapes))))
        parts.write(name, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
        return parts.path / name


def load_partition(path: str | Path) -> Partition:
    """The partition pickled at `path`, which must be a regular file owned by us and
    not writable by group or others (else `UntrustedCacheFile`, and it is not read)."""
    return pickle.loads(read_trusted(path, "unpickle"))
