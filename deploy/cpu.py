"""This CPU's feature flags as Linux names them (/proc/cpuinfo), and the load-time check
that the CPU has every one the artifact's code uses (the manifest's `target.cpu_flags`,
LLVM feature -> flag)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

from deploy.errors import DeployError

CPUINFO = Path("/proc/cpuinfo")


@cache
def cpu_flags(path: Path = CPUINFO) -> frozenset[str]:
    """The `flags` line of the first processor in `path` (empty when unreadable)."""
    try:
        with path.open() as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def check_cpu(required: Mapping[str, str], compiled_for: str, flags: frozenset[str]) -> None:
    """Raise DeployError naming the first feature in `required` ({LLVM name: flag}) that
    `flags` lacks."""
    if required and not flags:
        raise DeployError(f"cannot read the CPU flags in {CPUINFO} to check the artifact's")
    for feature, flag in required.items():
        if flag not in flags:
            same = "" if feature == flag else f" (LLVM feature {feature})"
            raise DeployError(
                f"this CPU lacks {flag}{same}, which the artifact's code uses "
                f"(compiled for {compiled_for})"
            )
