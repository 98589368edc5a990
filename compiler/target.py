"""The CPU code is generated for: one description at the bottom of the compiler.

A `Target` is plain data (an LLVM CPU name, its feature string, a triple; its
`describe()` string is written into measurement records). Everything the layers
above need to know about the ISA is derived from it here: the vector width
(`vector_lanes`), the number of vector registers, FMA, an ISA level. What only
the running machine can say (cache sizes, usable cores) comes from the OS, in
`host_caches()` and `host_cores()`.

This module imports nothing from the rest of `compiler` but its error class, so any
layer (the default schedules, codegen, measurement) may depend on it.

`SKETCHTUNE_ISA=avx2` makes the host target an AVX2 one on an AVX-512 CPU
(`restrict_isa`): the code and the schedules an AVX2 machine would get, run here.

Example:
    >>> t = Target("znver3", "+avx,+avx2,+fma", "x86_64-unknown-linux-gnu")
    >>> t.isa, t.vector_lanes, t.vector_registers, t.has_fma
    ('avx2', 8, 16, True)
    >>> t.describe()
    'llvm -mcpu=znver3 -mattr=+avx2,+fma'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llvmlite.binding as llvm

from compiler.errors import UserError

# Features worth naming in a record: they decide which code the compiler can emit.
_NOTABLE_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512vnni",
    "avx512bf16",
    "avx512fp16",
    "amx-tile",
)

# Code for a narrower ISA than the CPU's (restrict_isa): SKETCHTUNE_ISA=avx2.
ISA_ENV = "SKETCHTUNE_ISA"
_ABOVE_AVX2 = ("avx512", "avx10", "amx", "evex512")

# Used when the OS does not say (no sysfs: not Linux, or a sandbox hiding it): a
# 32 KiB L1d and a 1 MiB L2 per core and a 32 MiB shared L3 are typical of the
# x86-64 server cores this compiler targets (Zen 4, Ice Lake/Sapphire Rapids).
DEFAULT_L1D_BYTES = 32 << 10
DEFAULT_L2_BYTES = 1 << 20
DEFAULT_L3_BYTES = 32 << 20
_CACHE_SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True)
class Target:
    """An LLVM CPU name, its feature string (`+avx2,+fma,...`) and a target triple."""

    cpu: str
    features: str
    triple: str

    def describe(self) -> str:
        """The short form stored in records, e.g. `llvm -mcpu=rocketlake -mattr=+avx2,+fma`."""
        enabled = {f[1:] for f in self.features.split(",") if f.startswith("+")}
        notable = ",".join(f"+{f}" for f in _NOTABLE_FEATURES if f in enabled)
        return f"llvm -mcpu={self.cpu} -mattr={notable}" if notable else f"llvm -mcpu={self.cpu}"

    @property
    def enabled_features(self) -> frozenset[str]:
        """The features switched on (`+name` in the feature string), without the `+`."""
        return frozenset(f[1:] for f in self.features.split(",") if f.startswith("+"))

    @property
    def isa(self) -> str:
        """The widest x86 vector extension: "avx512", "avx2", "avx" or "sse"."""
        enabled = self.enabled_features
        for level, feature in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx")):
            if feature in enabled:
                return level
        return "sse"

    @property
    def vector_lanes(self) -> int:
        """float32 lanes of one native vector register: 16 (AVX-512), 8 (AVX), else 4."""
        enabled = self.enabled_features
        if "avx512f" in enabled:
            return 16
        return 8 if "avx" in enabled else 4

    @property
    def vector_bytes(self) -> int:
        """Bytes of one native vector register (64, 32 or 16)."""
        return 4 * self.vector_lanes

    @property
    def vector_registers(self) -> int:
        """Architectural vector registers: 32 with AVX-512 (zmm0-31), else 16."""
        return 32 if "avx512f" in self.enabled_features else 16

    @property
    def has_mask_registers(self) -> bool:
        """AVX-512's mask registers: a vector load or store guarded per lane costs about
        what a plain one does. Without them (AVX2) the guard is a compare and a masked
        move, several times slower."""
        return "avx512f" in self.enabled_features

    @property
    def has_fma(self) -> bool:
        """Fused multiply-add instructions (FMA3; every AVX-512 CPU has them)."""
        enabled = self.enabled_features
        return "fma" in enabled or "avx512f" in enabled

    def summary(self) -> str:
        """The ISA in one line, e.g. `znver4 avx512 16 lanes x 32 registers`."""
        fma = "" if self.has_fma else " (no FMA)"
        return (
            f"{self.cpu} {self.isa} {self.vector_lanes} lanes x "
            f"{self.vector_registers} registers{fma}"
        )


def vector_lanes(target: Target) -> int:
    """float32 lanes of `target`'s native vector register (16, 8 or 4)."""
    return target.vector_lanes


@cache
def init_llvm() -> None:
    """Initialize LLVM's native target once per process."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@cache
def host_target() -> Target:
    """The CPU this process runs on, with all its features, less those `SKETCHTUNE_ISA`
    leaves out (`restrict_isa`)."""
    init_llvm()
    native = Target(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        triple=llvm.get_process_triple(),
    )
    return restrict_isa(native, os.environ.get(ISA_ENV, ""))


def restrict_isa(target: Target, isa: str) -> Target:
    """`target` generating code for at most `isa`: "avx2" switches off every AVX-512,
    AVX10 and AMX feature (AVX2 code on an AVX-512 CPU: 16 registers of 8 lanes, as on
    Zen 1-3 or Haswell to Alder Lake; records name it by its features, so they never
    mix with the native target's); "" or "native" changes nothing."""
    if isa in ("", "native"):
        return target
    if isa != "avx2":
        raise UserError(f"{ISA_ENV}={isa!r}: give avx2 or native")
    if "avx2" not in target.enabled_features:
        raise UserError(f"{ISA_ENV}=avx2: this CPU ({target.cpu}) has no AVX2")
    features = [
        f"-{f[1:]}" if f.startswith("+") and f[1:].startswith(_ABOVE_AVX2) else f
        for f in target.features.split(",")
    ]
    return Target(target.cpu, ",".join(features), target.triple)


@dataclass(frozen=True)
class CacheSizes:
    """Data cache sizes in bytes seen by one core: L1d and L2 (per core), L3 (shared;
    None on a CPU that has none)."""

    l1d: int
    l2: int
    l3: int | None


@cache
def host_caches() -> CacheSizes:
    """This machine's cache sizes, from sysfs (the defaults above when unreadable)."""
    sizes = _sysfs_cache_sizes(_CACHE_SYSFS)
    if not sizes:
        return CacheSizes(DEFAULT_L1D_BYTES, DEFAULT_L2_BYTES, DEFAULT_L3_BYTES)
    # A level missing from a readable sysfs: L1d and L2 exist on every x86-64 core
    # (take the default); a missing L3 is a CPU without one.
    return CacheSizes(sizes.get(1, DEFAULT_L1D_BYTES), sizes.get(2, DEFAULT_L2_BYTES), sizes.get(3))


def _sysfs_cache_sizes(root: Path) -> dict[int, int]:
    """{level: bytes} of the data and unified caches listed under `root` (index*/)."""
    sizes: dict[int, int] = {}
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text().strip())
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size > 0:
            sizes[level] = size
    return sizes


def parse_size(text: str) -> int:
    """A sysfs cache size (`32K`, `1024K`, `32M`, `1G` or plain bytes) in bytes."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def host_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def host_summary() -> str:
    """This machine in one line for benchmarks, e.g.
    `znver4 avx512 16 lanes x 32 registers, L2 1 MiB, 2 cores`."""
    l2 = host_caches().l2
    size = f"{l2 >> 20} MiB" if l2 % (1 << 20) == 0 else f"{l2 >> 10} KiB"
    cores = host_cores()
    return f"{host_target().summary()}, L2 {size}, {cores} core{'s' if cores != 1 else ''}"
