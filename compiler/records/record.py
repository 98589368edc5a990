"""One measurement as stored: the candidate (workload key, steps), its costs or
error, where and how it was measured. JSON-lines form in `to_json` / `from_json`."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from compiler.errors import UserError

ERROR_KINDS = (
    "BUILD_ERROR",
    "BUILD_TIMEOUT",
    "RUN_ERROR",
    "RUN_TIMEOUT",
    "WRONG_RESULT",
    "RUNNER_CRASH",
)


class RecordError(UserError):
    """A record (JSON line, database row) is malformed; the message says which field."""


@dataclass(frozen=True)
class TargetInfo:
    """Where records were measured: the target key best lookups match on, and details."""

    target: str
    cpu: str
    features: str
    cores: int


@cache
def host_target_info() -> TargetInfo:
    """This machine: `llvm -mcpu=... -mattr=... -num-cores=N` and the full feature string."""
    from compiler.target import host_cores, host_target  # llvmlite only when asked

    t, cores = host_target(), host_cores()
    return TargetInfo(f"{t.describe()} -num-cores={cores}", t.cpu, t.features, cores)


@cache
def tool_version() -> str:
    try:
        return version("sketchtune")
    except PackageNotFoundError:  # running from a source tree
        return "0.1.0+src"


def steps_hash(steps: list[dict]) -> str:
    """sha256 of the canonical JSON of a step list: with the workload key, a candidate's id."""
    text = json.dumps(steps, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class MeasureRecord:
    """A stored measurement. `error_kind` None means valid; `costs_s` is every repeat."""

    workload_key: str
    target: str
    steps: list[dict]
    costs_s: tuple[float, ...]
    error_kind: str | None
    timestamp: float
    error_msg: str = ""
    build_s: float = 0.0
    run_s: float = 0.0
    task_name: str = ""
    flop_count: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    tool_version: str = ""
    cpu: str = ""
    features: str = ""
    cores: int = 0

    @property
    def steps_hash(self) -> str:
        return steps_hash(self.steps)

    @property
    def mean_cost_s(self) -> float:
        """Mean over repeats; infinity for an error record."""
        if self.error_kind is not None or not self.costs_s:
            return math.inf
        return sum(self.costs_s) / len(self.costs_s)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["costs_s"] = list(self.costs_s)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> MeasureRecord:
        """Validate and convert one parsed JSON line; RecordError names the bad field."""
        if not isinstance(obj, dict):
            raise RecordError("a record must be a JSON object")
        _require(obj, "workload_key", str)
        _require(obj, "target", str)
        _require(obj, "steps", list)
        _require(obj, "costs_s", list)
        _require(obj, "timestamp", (int, float))
        kind = obj.get("error_kind")
        if kind is not None and kind not in ERROR_KINDS:
            raise RecordError(f"error_kind: unknown kind {kind!r}")
        if not all(isinstance(c, (int, float)) for c in obj["costs_s"]):
            raise RecordError("costs_s: every cost must be a number")
        if not all(isinstance(s, dict) for s in obj["steps"]):
            raise RecordError("steps: every step must be an object")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in obj.items() if k in known}
        kwargs["costs_s"] = tuple(float(c) for c in obj["costs_s"])
        return cls(**kwargs)


def _require(obj: dict, key: str, kind: type | tuple[type, ...]) -> None:
    if key not in obj:
        raise RecordError(f"missing key {key!r}")
    if not isinstance(obj[key], kind) or isinstance(obj[key], bool):
        raise RecordError(f"{key}: wrong type {type(obj[key]).__name__}")
