"""Measuring devices: a device is a set of cores one runner process is pinned to."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEVICE_KINDS = ("default", "per-core")


@dataclass(frozen=True)
class Device:
    """A named set of CPU cores (logical CPU ids)."""

    name: str
    cores: tuple[int, ...]


def available_cores() -> tuple[int, ...]:
    """The cores this process may run on."""
    return tuple(sorted(os.sched_getaffinity(0)))


def make_devices(kind: str = "default", cores: tuple[int, ...] | None = None) -> list[Device]:
    """`default`: one device with all cores; `per-core`: one device per core.

    Example:
        >>> [d.name for d in make_devices("per-core", (0, 1))]
        ['cpu0', 'cpu1']
    """
    cores = cores or available_cores()
    if kind == "default":
        return [Device("cpu", cores)]
    if kind == "per-core":
        return [Device(f"cpu{c}", (c,)) for c in cores]
    raise ValueError(f"--devices: unknown kind {kind!r} (choose from {', '.join(DEVICE_KINDS)})")
