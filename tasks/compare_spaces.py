"""`sketchtune compare-spaces`: tune one op with the template policy and with the
sketch policy at the same budget, and tell a search problem from a representation
problem.

The two searches start from scratch (each its own temporary records database,
copied into `--records DB` afterwards when given) and alternate round by round
on the same builder and runner, so a drift of the machine's speed hits both.
The machine's peak is measured in the same command: a register-bound FMA loop
compiled with LLVM (compiler/measure/peak.py) and, on one thread, numpy's sgemm;
the peak is the larger.

Verdict: "search problem" when one space's best is more than SEARCH_RATIO times
the other's (that space holds a much better program than the other search
found); "representation problem" when both bests are below FAR_BELOW_PEAK of the
peak and neither curve improved in its last quarter of trials (more search will
not help; the spaces lack the program); else "no clear problem".
"""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from compiler.autotvm import NoTemplateError
from compiler.measure import Measurer, MeasureSettings, create_builder, create_runner
from compiler.measure.peak import fma_gflops, numpy_sgemm_gflops
from compiler.policies import create, policy_for_task
from compiler.records import create as create_store
from compiler.search.policy import SearchPolicy
from compiler.target import host_target, vector_lanes
from compiler.task import SearchTask
from compiler.task_scheduler import TaskScheduler
from tasks.options import OptionError, OpTuneOptions
from tasks.search_commands import cost_model, op_task

SEARCH_RATIO = 1.25  # one best this much faster than the other: a search problem
FAR_BELOW_PEAK = 0.5  # both bests under this share of the peak: far below it
STILL_IMPROVING = 1.02  # a last quarter that gained this much is still improving


def _say(text: str) -> None:
    print(text, file=sys.stderr)


@dataclass
class Side:
    """One contender: its scheduler (one task, its policy), its own records, and then
    every cost in measurement order."""

    name: str
    scheduler: TaskScheduler
    measurer: Measurer
    trials: int = 0
    costs_s: list[float] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.scheduler.task_states[0].done

    def read_costs(self, task: SearchTask) -> None:
        """Every cost of this side, in measurement order, from its own records."""
        store = self.measurer.store
        assert store is not None
        self.costs_s = [r.mean_cost_s if r.error_kind is None else math.inf
                        for r in store.records(task.workload_key)]  # fmt: skip

    def curve_gflops(self, flops: int) -> list[float]:
        """Best-so-far GFLOP/s after each trial (0 until a valid one)."""
        out, best = [], math.inf
        for c in self.costs_s:
            best = min(best, c)
            out.append(flops / best / 1e9 if math.isfinite(best) else 0.0)
        return out


def curve_summary(curve: list[float], costs_s: list[float]) -> dict[str, object]:
    """Final best, trials to reach 95 % of it, and whether the last quarter improved."""
    final = curve[-1] if curve else 0.0
    to_95 = next((k + 1 for k, g in enumerate(curve) if final and g >= 0.95 * final), None)
    at_3q = curve[(3 * len(curve)) // 4 - 1] if len(curve) >= 4 else 0.0
    best_s = min(costs_s, default=math.inf)
    return {
        "trials": len(curve),
        "errors": sum(not math.isfinite(c) for c in costs_s),
        "best_latency_s": best_s if math.isfinite(best_s) else None,
        "gflops": final,
        "trials_to_95": to_95,
        "improved_last_quarter": bool(final > STILL_IMPROVING * at_3q),
    }


def verdict(template: dict, sketch: dict, peak_gflops: float) -> tuple[str, str]:
    """(verdict, one-line reason) from the two summaries and the measured peak."""
    gt, gs = float(template["gflops"]), float(sketch["gflops"])  # type: ignore[arg-type]
    hi, lo = max(gt, gs), min(gt, gs)
    better, worse = ("template", "sketch") if gt >= gs else ("sketch", "template")
    if hi > 0 and (lo == 0 or hi / lo > SEARCH_RATIO):
        ratio = f"{hi / lo:.2f}x" if lo else "infinitely"
        return "search problem", (
            f"the {better} space holds a program {ratio} faster than the best the {worse} "
            f"search found"
        )
    stalled = not template["improved_last_quarter"] and not sketch["improved_last_quarter"]
    if hi < FAR_BELOW_PEAK * peak_gflops and stalled:
        return "representation problem", (
            f"both bests are under {FAR_BELOW_PEAK:.0%} of the measured peak "
            f"({hi:.1f} of {peak_gflops:.1f} GFLOP/s) and neither improved in its last quarter"
        )
    return "no clear problem", (
        f"the bests are within {SEARCH_RATIO}x of each other"
        + ("" if stalled else " and a curve is still improving")
        + f"; {hi / peak_gflops:.0%} of the peak"
    )


def measure_peak_gflops(threads: int) -> dict[str, object]:
    """The peak on `threads` threads, measured now: FMA loop, and numpy sgemm on one thread."""
    fma = fma_gflops(threads, vector_lanes(host_target()))
    sgemm = numpy_sgemm_gflops() if threads == 1 else None
    source = "register-bound FMA loop compiled with LLVM"
    if sgemm is not None and sgemm > fma:
        source = "numpy sgemm 1024^3"
    return {
        "peak_gflops": max(fma, sgemm or 0.0),
        "peak_source": source,
        "fma_gflops": fma,
        "numpy_sgemm_gflops": sgemm,
    }


def _policies(task: SearchTask, tuner: str, seed: int) -> dict[str, SearchPolicy]:
    try:
        template = create("template", task.dag, tuner=tuner, seed=seed)
    except NoTemplateError as err:
        raise OptionError(f"{task.name}: {err}; compare-spaces needs a template") from None
    sketch = policy_for_task("sketch", task.dag, model=cost_model("xgb"), seed=seed)
    return {"template": template, "sketch": sketch}


def compare_spaces_command(
    o: OpTuneOptions, *, keep_records: str | None = None
) -> dict[str, object]:
    """Tune `o.op` with both policies (`o.trials` each, the other options as tune-op's)
    and compare; the --json summary. `keep_records` names a database to copy every
    record into."""
    if o.trials < 1:
        raise OptionError(f"--trials must be >= 1, got {o.trials}")
    task = op_task(o.op, o.shape)
    policies = _policies(task, o.tuner, o.seed)
    settings = MeasureSettings(threads=o.threads)
    with tempfile.TemporaryDirectory() as tmp:
        stores = {k: create_store("sqlite", path=Path(tmp) / f"{k}.db") for k in policies}
        with (
            create_builder("local") as builder,
            create_runner("local", settings=settings, devices=o.devices) as runner,
        ):
            sides = [
                Side(k, TaskScheduler([task], [p], per_round=o.per_round, seed=o.seed),
                     Measurer(builder=builder, runner=runner, store=stores[k]))
                for k, p in policies.items()
            ]  # fmt: skip
            _alternate(sides, task, o.trials)
        for side in sides:
            side.read_costs(task)
        kept = _keep_records(stores, keep_records)
    peak = measure_peak_gflops(o.threads)
    return _report(o, task, sides, peak, keep_records, kept)


def _alternate(sides: list[Side], task: SearchTask, trials: int) -> None:
    """A round of each side in turn, until each has its trials or is done: the one
    tuning loop, one round per call, so a drift of the machine hits both."""
    while any(not s.done and s.trials < trials for s in sides):
        for s in sides:
            if not s.done and s.trials < trials:
                s.trials += s.scheduler.tune(s.measurer, trials - s.trials, max_rounds=1,
                                             ahead=False).trials  # fmt: skip
                best = s.scheduler.task_states[0].best_cost_s
                gflops = task.flop_count / best / 1e9 if math.isfinite(best) else 0.0
                _say(f"[{s.name}] {s.trials} trials, best {gflops:.1f} GFLOP/s")


def _keep_records(stores: dict, records: str | None) -> int:
    """Copy both searches' records into `records` (if given); close the temporary stores."""
    kept = 0
    if records is not None:
        Path(records).parent.mkdir(parents=True, exist_ok=True)
        db = create_store("sqlite", path=records)
        try:
            for store in stores.values():
                kept += db.add(store.records())
        finally:
            db.close()
    for store in stores.values():
        store.close()
    return kept


def _report(o: OpTuneOptions, task, sides, peak, records, kept) -> dict[str, object]:
    op, shape, tuner, threads = o.op, o.shape, o.tuner, o.threads
    summaries = {s.name: curve_summary(s.curve_gflops(task.flop_count), s.costs_s) for s in sides}
    for s in summaries.values():
        s["share_of_peak"] = float(s["gflops"]) / peak["peak_gflops"]  # type: ignore[arg-type]
    summaries["template"]["tuner"] = tuner
    verdict_text, reason = verdict(summaries["template"], summaries["sketch"], peak["peak_gflops"])
    _print_table(op, shape, summaries, peak, threads, tuner, verdict_text, reason)
    return {
        "op": op,
        "shape": [int(v) for v in shape.split(",")],
        "trials": max(int(s["trials"]) for s in summaries.values()),  # type: ignore[call-overload]
        "threads": threads,
        **peak,
        "template": summaries["template"],
        "sketch": summaries["sketch"],
        "verdict": verdict_text,
        "reason": reason,
        "records": records,
        "records_kept": kept,
    }


def _print_table(op, shape, summaries, peak, threads, tuner, verdict_text, reason) -> None:
    t, s = summaries["template"], summaries["sketch"]

    def row(label: str, a: object, b: object) -> None:
        _say(f"{label:<28}{a!s:>18}{b!s:>18}")

    def ms(x: object) -> str:
        return f"{float(x) * 1e3:.4f}" if x is not None else "-"  # type: ignore[arg-type]

    _say(f"compare-spaces {op} {shape}: {t['trials']} / {s['trials']} trials, {threads} thread(s)")
    row("", f"template ({tuner})", "sketch")
    row("best latency (ms)", ms(t["best_latency_s"]), ms(s["best_latency_s"]))
    row("GFLOP/s", f"{t['gflops']:.1f}", f"{s['gflops']:.1f}")
    row("share of peak", f"{t['share_of_peak']:.0%}", f"{s['share_of_peak']:.0%}")
    row("trials to 95% of its best", t["trials_to_95"], s["trials_to_95"])
    yes = {True: "yes", False: "no"}
    row(
        "improved in last quarter", yes[t["improved_last_quarter"]], yes[s["improved_last_quarter"]]
    )
    row("failed candidates", t["errors"], s["errors"])
    sgemm = peak["numpy_sgemm_gflops"]
    extra = f"; FMA loop {peak['fma_gflops']:.1f}" + (f", numpy sgemm {sgemm:.1f}" if sgemm else "")
    _say(f"peak: {peak['peak_gflops']:.1f} GFLOP/s ({peak['peak_source']}{extra})")
    _say(f"verdict: {verdict_text}: {reason}")
