"""A builder and a runner that compile and time nothing: the real Measurer (its
skipping of measured candidates, its records) and the real tuning loop run on
them with costs from a function of each candidate (no LLVM, milliseconds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compiler.measure import BuildResult, MeasureInput, MeasureResult, MeasureSettings
from compiler.measure.types import ErrorKind

CostOf = Callable[[MeasureInput], float | None]  # seconds, None: the candidate fails


@dataclass(frozen=True)
class Scripted:
    """The "object code" of a candidate: the candidate itself."""

    input: MeasureInput


class ScriptedBuilder:
    def __init__(self) -> None:
        self.built: list[MeasureInput] = []

    def build(self, inputs):
        self.built.extend(inputs)
        return [BuildResult(Scripted(i)) for i in inputs]

    def build_references(self, tasks):
        return [BuildResult(None) for _ in tasks]  # no reference: nothing to check

    def close(self) -> None:
        return None


class ScriptedRunner:
    """Times each request as `cost_of(its candidate)`, reporting each result as it goes."""

    settings = MeasureSettings()

    def __init__(self, cost_of: CostOf) -> None:
        self.cost_of, self.timed = cost_of, 0

    def run(self, requests, on_result=None):
        out = []
        for k, req in enumerate(requests):
            self.timed += 1
            cost = self.cost_of(req.artifact.input)
            result = (MeasureResult((cost,)) if cost is not None
                      else MeasureResult((), ErrorKind.RUN_ERROR, "scripted failure"))  # fmt: skip
            if on_result is not None:
                on_result(k, result)
            out.append(result)
        return out

    def close(self) -> None:
        return None
