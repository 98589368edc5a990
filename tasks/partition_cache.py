"""Import + partition of a model, cached on disk by the model's content hash.

The Prefect task that wraps `cached_partition` is cached by the same digest, so a
rerun of a model skips the import; the cache file is what the flow loads (a path
travels through Prefect, never the partition with its weights).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from compiler.records.record import tool_version
from models.load import load_graph, load_proto
from models.partition import Partition, partition


def cache_dir() -> Path:
    """`$SKETCHTUNE_CACHE` or ~/.cache/sketchtune."""
    root = os.environ.get("SKETCHTUNE_CACHE") or Path.home() / ".cache" / "sketchtune"
    return Path(root)


PARTITION_FORMAT = "winograd-1"  # changes when the partitioner rewrites convs differently


def model_digest(spec: str) -> str:
    """sha256 of the model's serialized bytes and the tool version (a zoo model is
    built in code first) and the partition format, so a changed file or a new
    partitioner misses the cache."""
    h = hashlib.sha256(load_proto(spec).SerializeToString(deterministic=True))
    h.update(tool_version().encode())
    h.update(PARTITION_FORMAT.encode())
    return h.hexdigest()


def cached_partition(spec: str, digest: str | None = None) -> Path:
    """The path of the pickled partition of `spec`, importing it on a cache miss."""
    digest = digest or model_digest(spec)
    path = cache_dir() / "partitions" / f"{digest}.pkl"
    if not path.is_file():
        part = partition(load_graph(spec))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)  # atomic: a concurrent reader sees all or nothing
    return path


def load_partition(path: str | Path) -> Partition:
    return pickle.loads(Path(path).read_bytes())
