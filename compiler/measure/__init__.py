"""Measurement: compile candidates in parallel builder processes, time them in
isolated runner processes (docs/measurement.md#errors), record every result.

    >>> from compiler import measure
    >>> with measure.create_builder("local") as b, measure.create_runner("local") as r:  # doctest: +SKIP
    ...     pairs = measure.Measurer(builder=b, runner=r, store=db).measure(inputs)
"""

from compiler.measure.builder import Builder, LocalBuilder
from compiler.measure.builder import create as create_builder
from compiler.measure.devices import DEVICE_KINDS, Device, available_cores, make_devices
from compiler.measure.measurer import Measurer, MeasureStats, to_record
from compiler.measure.runner import LocalRunner, Runner
from compiler.measure.runner import create as create_runner
from compiler.measure.types import (
    BuildResult,
    ErrorKind,
    MeasureInput,
    MeasureResult,
    MeasureSettings,
    RunRequest,
)

__all__ = [
    "DEVICE_KINDS",
    "BuildResult",
    "Builder",
    "Device",
    "ErrorKind",
    "LocalBuilder",
    "LocalRunner",
    "MeasureInput",
    "MeasureResult",
    "MeasureSettings",
    "MeasureStats",
    "Measurer",
    "RunRequest",
    "Runner",
    "available_cores",
    "create_builder",
    "create_runner",
    "make_devices",
    "to_record",
]
