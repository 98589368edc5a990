"""The knobs read from the environment, in one typed object, read when first asked.

SKETCHTUNE_CACHE              where caches live (partitions, the machine's peak);
                              default ~/.cache/sketchtune
SKETCHTUNE_FEATURE_WORKERS    feature-extraction processes besides the caller;
                              default cores - 1
SKETCHTUNE_MAX_TENSOR_BYTES   the largest tensor a model or an op may have (import
                              refuses a bigger one, naming it); default 16 GiB

>>> from compiler.settings import settings, override
>>> settings().cache_dir                                         # doctest: +SKIP
>>> with override(max_tensor_bytes=1 << 20): ...                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from compiler.errors import UserError

GIB = 1 << 30


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    feature_workers: int
    max_tensor_bytes: int


_override: Settings | None = None


def settings() -> Settings:
    """The settings now: the environment's, or an `override` in force."""
    return _override if _override is not None else from_environment()


def from_environment() -> Settings:
    env = os.environ
    cache = env.get("SKETCHTUNE_CACHE") or Path.home() / ".cache" / "sketchtune"
    workers = _count(env.get("SKETCHTUNE_FEATURE_WORKERS"), max(0, (os.cpu_count() or 1) - 1))
    return Settings(
        cache_dir=Path(cache),
        feature_workers=workers,
        max_tensor_bytes=_bytes("SKETCHTUNE_MAX_TENSOR_BYTES", 16 * GIB),
    )


@contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """The settings with `changes` while the block runs (tests)."""
    global _override
    before = _override
    _override = replace(settings(), **changes)  # type: ignore[arg-type]
    try:
        yield _override
    finally:
        _override = before


def _count(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.strip().isdigit() else default


def _bytes(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or int(text) < 1:
        raise UserError(f"{name}={text!r}: give a positive number of bytes")
    return int(text)


def check_tensor_size(what: str, shape: tuple[int, ...], itemsize: int = 4) -> None:
    """Refuse a tensor larger than the limit (UserError naming it, its shape and size)."""
    size = itemsize
    for d in shape:
        size *= int(d)
    limit = settings().max_tensor_bytes
    if size > limit:
        raise UserError(
            f"{what} of shape {tuple(int(d) for d in shape)} would take {_human(size)}, "
            f"more than the limit of {_human(limit)} (SKETCHTUNE_MAX_TENSOR_BYTES)"
        )


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"
