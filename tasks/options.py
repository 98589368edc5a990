"""The options of the tuning commands: one frozen object per command family.

`tune-op` (and `compare-spaces`) take an `OpTuneOptions`, `tune` and `nightly`
a `TuneOptions`; both share `SearchOptions`. Each is checked when it is made,
so a bad option fails at once, in one line (`OptionError`, exit code 2), before
Prefect, builders or runners start; then the object itself is passed through:
the CLI makes it, the flow takes it as its one parameter, a nightly deployment
stores it. The defaults live here and nowhere else (the CLI reads them).

    >>> TuneOptions(model="zoo:mlp", trials=64)                   # doctest: +SKIP
    >>> TuneOptions(model="zoo:mlp", tuner="bogus")               # doctest: +SKIP
    OptionError: --tuner must be one of grid, random, ga, xgb, got 'bogus'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from compiler.errors import UserError

# (the registries of policies, tuners, strategies and devices are imported when an
# options object is made, not with this module: the CLI reads the defaults here,
# and `--help` stays quick)

TASK_RUNNERS = ("threads", "dask")


class OptionError(UserError):
    """A bad command-line option (the message names it)."""


NO_TRIAL_LIMIT = 2**31 - 1  # `--minutes` without `--trials`: the time is the budget


def trial_budget(trials: int | None, minutes: float | None, default: int) -> int:
    """`--trials` as given; not given: no limit with `--minutes`, else `default`."""
    if trials is not None:
        return trials
    return NO_TRIAL_LIMIT if minutes is not None else default


@dataclass(frozen=True, kw_only=True)
class SearchOptions:
    """How candidates are searched, built and timed, and where records go."""

    trials: int = 256  # new measurements this run (NO_TRIAL_LIMIT: none)
    minutes: float | None = None  # no round starts after this many minutes of tuning
    records: str = "runs/records.db"
    policy: str = "sketch"
    tuner: str = "xgb"  # with policy "template"
    threads: int = 1  # threads of each timed kernel
    devices: str = "default"  # "per-core": one measuring device per core
    seed: int = 0
    per_round: int = 64  # candidates per round (at most)
    early_stopping: int | None = None  # stop a task after this many trials without a 1 % gain
    search_ahead: bool = True  # search the next round while this one is timed
    # the cost model starts from (and adds to) the training data beside the records
    # database: every workload measured on this CPU (docs/search.md#warm-start)
    warm_start: bool = True

    def __post_init__(self) -> None:
        _at_least("--trials", self.trials, 0)
        if self.minutes is not None and not (
            isinstance(self.minutes, int | float) and 0 < self.minutes < math.inf
        ):
            raise OptionError(f"--minutes must be a positive number, got {self.minutes!r}")
        _at_least("--per-round", self.per_round, 1)
        _at_least("--threads", self.threads, 1)
        _at_least("--seed", self.seed, 0)
        if self.early_stopping is not None:
            _at_least("--early-stopping", self.early_stopping, 1)
        _one_of("--policy", self.policy, _choices()["policy"])
        _one_of("--tuner", self.tuner, _choices()["tuner"])
        _one_of("--devices", self.devices, _choices()["devices"])
        if not self.records:
            raise OptionError("--records must name a file")

    def check_records(self) -> None:
        """The records database opens (it is created if missing): not a directory,
        not another kind of file (RecordError names it)."""
        path = Path(self.records)
        if path.is_dir():
            raise OptionError(f"--records {self.records}: a directory, not a records database")
        from compiler.records import SQLiteStore

        path.parent.mkdir(parents=True, exist_ok=True)
        SQLiteStore(path).close()


@dataclass(frozen=True, kw_only=True)
class OpTuneOptions(SearchOptions):
    """`tune-op OP --shape ...`: one op, tuned by a task scheduler of one task."""

    op: str
    shape: str
    trials: int = 64
    baseline: bool = True  # measure the op's default schedule first


@dataclass(frozen=True, kw_only=True)
class TuneOptions(SearchOptions):
    """`tune MODEL` (and each night of `nightly MODEL`): a whole network."""

    model: str
    out_dir: str = "runs/latest"
    scheduler: str = "gradient"
    check: bool = True  # compile the tuned network and check it against onnxruntime
    retime: int = 2  # finalists per task re-timed side by side with its default (0: off)
    artifact: bool = False  # also write the deployable artifact into DIR/artifact
    input_shapes: tuple[str, ...] = ()  # NAME=1,128 per input with dynamic dims
    dated: bool = False  # write into OUT_DIR/<UTC timestamp> (nightly runs)
    trend: str | None = None  # the trend table each run appends to (nightly runs)
    task_runner: str = "threads"
    dask_address: str | None = None  # an existing Dask scheduler (implies task_runner dask)
    dask_workers: int = 2  # workers of the LocalCluster started without an address
    pin_dask_cores: bool = False  # each worker's timings on its own core (a local cluster)

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("--scheduler", self.scheduler, _choices()["scheduler"])
        _one_of("--task-runner", self.task_runner, TASK_RUNNERS)
        _at_least("--dask-workers", self.dask_workers, 1)
        _at_least("--retime", self.retime, 0)
        if not self.model:
            raise OptionError("MODEL must name an ONNX file or zoo:NAME")
        if self.dask_address and self.task_runner != "dask":
            object.__setattr__(self, "task_runner", "dask")  # an address means Dask

    @property
    def uses_dask(self) -> bool:
        return self.task_runner == "dask"


def _at_least(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or value < low:
        raise OptionError(f"{name} must be >= {low}, got {value!r}")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@cache
def _choices() -> dict[str, tuple[str, ...]]:
    """The names each registry accepts."""
    from compiler.autotvm.tuners import TUNERS
    from compiler.measure.devices import DEVICE_KINDS
    from compiler.policies import POLICIES
    from compiler.task_scheduler.strategy import STRATEGIES

    return {"policy": POLICIES, "tuner": tuple(TUNERS), "devices": DEVICE_KINDS,
            "scheduler": STRATEGIES}  # fmt: skip
