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
def host_target_info(threads: int = 1) -> TargetInfo:
    """This machine at `threads` threads per kernel: `llvm -mcpu=... -mattr=...
    -num-cores=N`, with ` -threads=T` when T > 1 (`threads_target`), and the full
    feature string."""
    from compiler.target import host_cores, host_target  # llvmlite only when asked

    t, cores = host_target(), host_cores()
    key = threads_target(f"{t.describe()} -num-cores={cores}", threads)
    return TargetInfo(key, t.cpu, t.features, cores)


THREADS_FLAG = " -threads="


def threads_target(base: str, threads: int) -> str:
    """The target key of records measured with `threads` threads per kernel. A timing
    on 2 threads says nothing of a schedule's speed on 1, so the thread count is part
    of the key every lookup matches on; 1 thread is the bare key (records of before
    the flag were all measured on 1 thread, or moved by the store's migration)."""
    return base if threads <= 1 else f"{base}{THREADS_FLAG}{threads}"


def keyed_target(record: MeasureRecord) -> str:
    """`record`'s target key with the thread count its settings name, if it lacks one."""
    threads = record.settings.get("threads")
    if THREADS_FLAG in record.target or type(threads) is not int:
        return record.target
    return threads_target(record.target, threads)


def target_threads(target: str) -> int:
    """The thread count a target key names (1 when it names none)."""
    _, flag, rest = target.partition(THREADS_FLAG)
    return int(rest.split()[0]) if flag and rest.split() and rest.split()[0].isdigit() else 1


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
        """Validate and convert one parsed JSON line; RecordError names the bad field.

        Every field is checked: strings are strings (UTF-8), numbers are finite
        numbers (not booleans), `steps` is a list of objects and `settings` an
        object (neither nested deeper than 32 levels, no NaN or infinity inside),
        `error_kind` is null or one of ERROR_KINDS, and a valid record (no
        error_kind) has at least one cost; every cost is > 0. Unknown keys are
        ignored (a newer tool's records still import)."""
        if not isinstance(obj, dict):
            raise RecordError("a record must be a JSON object")
        kind = obj.get("error_kind")
        if kind is not None and (not isinstance(kind, str) or kind not in ERROR_KINDS):
            raise RecordError(f"error_kind: unknown kind {_show(kind)} (null or one of "
                              f"{', '.join(ERROR_KINDS)})")  # fmt: skip
        return cls(
            workload_key=_text(obj, "workload_key", required=True),
            target=_text(obj, "target", required=True),
            steps=_steps(obj),
            costs_s=_costs(obj, valid=kind is None),
            error_kind=kind,
            timestamp=_number(obj, "timestamp", required=True),
            error_msg=_text(obj, "error_msg"),
            build_s=_number(obj, "build_s"),
            run_s=_number(obj, "run_s"),
            task_name=_text(obj, "task_name"),
            flop_count=_count(obj, "flop_count"),
            settings=_settings(obj),
            tool_version=_text(obj, "tool_version"),
            cpu=_text(obj, "cpu"),
            features=_text(obj, "features"),
            cores=_count(obj, "cores"),
        )


MAX_NESTING = 32  # levels of lists and objects inside `steps` or `settings`
_MAX_INT = 2**63 - 1  # SQLite's INTEGER


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _get(obj: dict, key: str, required: bool) -> Any:
    if key not in obj and required:
        raise RecordError(f"missing key {key!r}")
    return obj.get(key)


def _text(obj: dict, key: str, *, required: bool = False) -> str:
    if key not in obj and not required:
        return ""
    value = _get(obj, key, required)
    if not isinstance(value, str):
        raise RecordError(f"{key}: a string expected, not {type(value).__name__}")
    if required and not value:
        raise RecordError(f"{key}: empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{key}: not valid UTF-8 (a lone surrogate)") from None
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(obj: dict, key: str, *, required: bool = False) -> float:
    """A finite number >= 0 (seconds), as a float."""
    if key not in obj and not required:
        return 0.0
    value = _get(obj, key, required)
    if not _is_number(value):
        raise RecordError(f"{key}: a number expected, not {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError:  # an integer past the range of a float
        out = math.inf
    if not math.isfinite(out) or out < 0:
        raise RecordError(f"{key}: must be a finite number >= 0, not {_show(value)}")
    return out


def _count(obj: dict, key: str) -> int:
    """An integer >= 0 that SQLite can store (an integral float is accepted)."""
    if key not in obj:
        return 0
    value = obj[key]
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"{key}: an integer expected, not {type(value).__name__}")
    if not 0 <= value <= _MAX_INT:
        raise RecordError(f"{key}: out of range ({_show(value)})")
    return value


def _costs(obj: dict, *, valid: bool) -> tuple[float, ...]:
    value = _get(obj, "costs_s", True)
    if not isinstance(value, list):
        raise RecordError(f"costs_s: a list expected, not {type(value).__name__}")
    if valid and not value:
        raise RecordError("costs_s: a valid record (error_kind null) needs at least one cost")
    costs = []
    for c in value:
        if not _is_number(c):
            raise RecordError(f"costs_s: every cost must be a number, not {_show(c)}")
        try:
            cost = float(c)
        except OverflowError:
            cost = math.inf
        if not (math.isfinite(cost) and cost > 0):
            raise RecordError(f"costs_s: every cost must be finite and > 0, not {_show(c)}")
        costs.append(cost)
    if not math.isfinite(sum(costs)):
        raise RecordError("costs_s: too large (their sum overflows)")
    return tuple(costs)


def _steps(obj: dict) -> list[dict]:
    value = _get(obj, "steps", True)
    if not isinstance(value, list):
        raise RecordError(f"steps: a list expected, not {type(value).__name__}")
    if not all(isinstance(s, dict) for s in value):
        raise RecordError("steps: every step must be an object")
    _check_tree("steps", value)
    return value


def _settings(obj: dict) -> dict[str, Any]:
    if "settings" not in obj:
        return {}
    value = obj["settings"]
    if not isinstance(value, dict):
        raise RecordError(f"settings: an object expected, not {type(value).__name__}")
    _check_tree("settings", value)
    return value


def _check_tree(key: str, root: Any) -> None:
    """Plain JSON, not too deep: lists, objects with string keys, strings (UTF-8),
    finite numbers, booleans and nulls (iterative: no recursion on deep input)."""
    stack = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > MAX_NESTING:
                raise RecordError(f"{key}: nested deeper than {MAX_NESTING} levels")
            if isinstance(value, dict):
                for k in value:
                    if not isinstance(k, str):
                        raise RecordError(f"{key}: an object key must be a string")
                    _check_string(key, k)
                stack.extend((v, depth + 1) for v in value.values())
            else:
                stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            _check_string(key, value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise RecordError(f"{key}: holds {value!r}, not a JSON number")
        elif value is not None and not isinstance(value, int):  # bool is an int
            raise RecordError(f"{key}: holds a {type(value).__name__}, not JSON")


def _check_string(key: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{key}: a string that is not valid UTF-8 (a lone surrogate)") from None
