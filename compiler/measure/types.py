"""What goes into a measurement and what comes out of it."""

from __future__ import annotations

import enum
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from compiler.codegen.build import Artifact
from compiler.schedule.state import State
from compiler.task import SearchTask


class ErrorKind(enum.Enum):
    """Why a candidate has no time (docs/measurement.md#errors); stored by name in records."""

    BUILD_ERROR = "BUILD_ERROR"  # lowering or LLVM failed
    BUILD_TIMEOUT = "BUILD_TIMEOUT"  # compiling took longer than the limit
    RUN_ERROR = "RUN_ERROR"  # loading or calling the kernel raised
    RUN_TIMEOUT = "RUN_TIMEOUT"  # the kernel hung past the limit (runner restarted)
    WRONG_RESULT = "WRONG_RESULT"  # output differs from the default schedule's
    RUNNER_CRASH = "RUNNER_CRASH"  # the runner process died (segfault; restarted)


@dataclass(frozen=True, eq=False)
class MeasureInput:
    """One candidate: a task and a complete schedule state of its DAG. `meta` is what
    the search policy knows about it (a template's config); records keep it in their
    settings under "template"."""

    task: SearchTask
    state: State
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildResult:
    """A compiled candidate, or why there is none."""

    artifact: Artifact | None
    error_kind: ErrorKind | None = None
    error_msg: str = ""
    build_s: float = 0.0


@dataclass(frozen=True)
class MeasureResult:
    """Costs of every repeat in seconds (empty on error), the error, and the times spent."""

    costs_s: tuple[float, ...]
    error_kind: ErrorKind | None = None
    error_msg: str = ""
    build_s: float = 0.0
    run_s: float = 0.0
    timestamp: float = field(default_factory=time.time)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return self.error_kind is None and bool(self.costs_s)

    @property
    def mean_cost_s(self) -> float:
        """Mean over repeats; infinity for a failed candidate."""
        return sum(self.costs_s) / len(self.costs_s) if self.is_valid else math.inf


@dataclass(frozen=True)
class MeasureSettings:
    """How candidates are built and timed; stored with every record.

    `number` calls make one repeat, raised until a repeat lasts `min_repeat_ms`;
    `flush` overwrites the CPU caches before every call (and forces number 1);
    `cooldown_s` sleeps between repeats; `threads` 0 means the device's core count.
    """

    number: int = 3
    repeat: int = 3
    min_repeat_ms: float = 10.0
    flush: bool = False
    cooldown_s: float = 0.0
    threads: int = 0
    build_timeout_s: float = 15.0
    run_timeout_s: float = 10.0
    check: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("number", "repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"measure settings: {name} must be at least 1")
        for name in ("build_timeout_s", "run_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"measure settings: {name} must be positive")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRequest:
    """What a runner needs for one built candidate: its code, the reference code
    (the task's default schedule; None skips the check) and how many parameters
    are inputs (the rest are outputs)."""

    artifact: Artifact
    reference: Artifact | None
    n_inputs: int
    workload_key: str
