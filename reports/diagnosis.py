"""Per-layer diagnosis: what to do next about each task, with the numbers behind it.

Rules, in order (the first that fires is the verdict):

1. **untuned**: no valid measurement yet.
2. **search problem**: another search found a clearly faster program for the
   same workload (records with `settings["template"]`, AutoTVM-style, against
   records without, sketch or random search: the run's own kind is `SEARCH_GAP`
   times slower than the other's best), or the cost model ranks the task's
   measured candidates badly (pairwise ranking accuracy below `RANKING_MIN`,
   when the profile carries one). The space holds better programs; the search
   does not find them.
3. **still improving**: the running best moved by more than `IMPROVING_GAIN`
   within the task's last trials (the last quarter, at least `MIN_WINDOW`), or
   the task has too few trials to tell (under `MIN_TRIALS`, one Ansor round: a
   flat stretch of a few random programs is no plateau). More trials should pay.
4. **at roofline**: at least `AT_ROOFLINE` of the roofline bound, min(measured
   peak, arithmetic intensity x measured bandwidth). Nothing to gain here.
5. **representation problem**: plateaued below `FAR_BELOW` of that bound. The
   search has converged on the best its schedule space holds, and that is far
   from the machine: it needs a new sketch rule, template or layout.
6. **plateaued**: converged between the two bounds; modest headroom.

The intensity counts compulsory traffic only (inputs read once, output written
once); the bandwidth is the cache's when that traffic fits in the caches (the
weights of a small layer stay there between inferences), else memory's. Tiny
layers (about a microsecond) are bound by call overhead, not by the roofline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from compiler.measure.peak import Peak

SEARCH_GAP = 1.25  # another search's best this many times faster: a search problem
RANKING_MIN = 0.6  # pairwise ranking accuracy below this (0.5 = chance): a search problem
IMPROVING_GAIN = 0.02  # the best improved by more than 2 % in the last window: still improving
MIN_WINDOW = 8  # the last window holds at least this many trials
MIN_TRIALS = 64  # fewer trials than one Ansor round: too early to call a plateau
AT_ROOFLINE = 0.8  # share of the roofline bound counted as "at roofline"
FAR_BELOW = 0.5  # below this share of the bound, a plateau is a representation problem

SEARCH_SOURCE = "sketch/random search"


@dataclass(frozen=True)
class Diagnosis:
    verdict: str
    evidence: str


def source_of(template: str) -> str:
    """Where a record came from: a named template, or the sketch/random search."""
    return f"template {template}" if template else SEARCH_SOURCE


def own_sources(policy: str, sources: Sequence[str]) -> list[str]:
    """The sources the run's policy produced (templates for "template", else the search)."""
    if policy == "template":
        return [s for s in sources if s != SEARCH_SOURCE]
    return [s for s in sources if s == SEARCH_SOURCE]


def last_window_gain(costs_s: Sequence[float]) -> tuple[float, int]:
    """(relative improvement of the running best within the last window, window size).

    `costs_s` are the task's trials in time order (NaN for failed ones). The gain
    is infinite when nothing valid came before the window.
    """
    best = pd.Series(costs_s, dtype=float).cummin().to_numpy()
    window = max(MIN_WINDOW, len(best) // 4)
    if len(best) < MIN_TRIALS or len(best) <= window or not np.isfinite(best[-window - 1]):
        return math.inf, window
    before, after = best[-window - 1], best[-1]
    return float(before / after - 1.0), window


def search_gap(best_by_source: Mapping[str, float], policy: str) -> str | None:
    """Evidence that another search found a clearly faster program, or None."""
    finite = {s: b for s, b in best_by_source.items() if b is not None and math.isfinite(b)}
    own = own_sources(policy, list(finite))
    others = [s for s in finite if s not in own]
    if not own or not others:
        return None
    mine = min(own, key=finite.__getitem__)
    theirs = min(others, key=finite.__getitem__)
    ratio = finite[mine] / finite[theirs]
    if ratio < SEARCH_GAP:
        return None
    return (
        f"{theirs} found {_ms(finite[theirs])}, {ratio:.2f}x faster than "
        f"{mine}'s best {_ms(finite[mine])}"
    )


def diagnose_layer(
    *,
    costs_s: Sequence[float],
    gflops: float,
    roofline_gflops: float,
    intensity: float,
    peak: Peak,
    bandwidth_gbytes_s: float | None = None,
    best_by_source: Mapping[str, float] | None = None,
    policy: str = "",
    ranking_accuracy: float | None = None,
) -> Diagnosis:
    """The verdict for one task from its trials and its speed against the roofline."""
    costs = [c for c in costs_s if c is not None]
    valid = [c for c in costs if math.isfinite(c)]
    if not valid:
        return Diagnosis("untuned", f"no valid measurement in {len(costs)} trials")
    gap = search_gap(best_by_source or {}, policy)
    if gap is not None:
        return Diagnosis("search problem", gap)
    if ranking_accuracy is not None and ranking_accuracy < RANKING_MIN:
        return Diagnosis(
            "search problem",
            f"the cost model ranks this task's measured candidates with pairwise accuracy "
            f"{ranking_accuracy:.2f} (0.5 is chance, {RANKING_MIN} needed)",
        )
    gain, window = last_window_gain(costs)
    if gain > IMPROVING_GAIN:
        if math.isinf(gain):
            return Diagnosis("still improving", f"only {len(costs)} trials; give it more")
        return Diagnosis(
            "still improving",
            f"best improved {gain * 100:.1f} % in the last {window} of {len(costs)} trials "
            f"(now {gflops:.1f} GFLOP/s); give it more trials",
        )
    share = gflops / roofline_gflops if roofline_gflops > 0 else math.nan
    where = (
        f"{gflops:.1f} GFLOP/s = {share:.2f} of the {roofline_gflops:.1f} GFLOP/s roofline "
        f"bound for intensity {intensity:.3g} FLOP/byte (peak {peak.gflops:.0f} GFLOP/s, "
        f"{bandwidth_gbytes_s or peak.gbytes_s:.1f} GB/s)"
    )
    flat = f"flat over the last {window} of {len(costs)} trials"
    if share >= AT_ROOFLINE:
        return Diagnosis("at roofline", f"{where}; {flat}")
    if share < FAR_BELOW:
        return Diagnosis(
            "representation problem",
            f"plateaued at {where}; {flat}: needs a new sketch rule, template or layout",
        )
    return Diagnosis("plateaued", f"plateaued at {where}; {flat}")


def diagnose(
    layers: pd.DataFrame,
    records: pd.DataFrame,
    peak: Peak,
    *,
    policy: str = "",
    ranking_accuracy: Mapping[int, float] | None = None,
) -> pd.DataFrame:
    """task_id, diagnosis, evidence for every row of the per-layer table."""
    rows = []
    for layer in layers.itertuples(index=False):
        mine = records[records["workload_key"] == layer.workload_key].sort_values(
            "timestamp", kind="stable"
        )
        by_source = (
            mine.assign(source=mine["template"].map(source_of))
            .groupby("source")["mean_cost_s"]
            .min()
            .to_dict()
        )
        own = mine[(mine["template"] != "") == (policy == "template")]
        search_costs = own if len(own) else mine
        result = diagnose_layer(
            costs_s=search_costs["mean_cost_s"].tolist(),
            gflops=float(layer.gflops),
            roofline_gflops=float(layer.roofline_gflops),
            intensity=float(layer.intensity),
            peak=peak,
            bandwidth_gbytes_s=float(layer.bandwidth_gbytes_s),
            best_by_source=by_source,
            policy=policy,
            ranking_accuracy=(ranking_accuracy or {}).get(int(layer.task_id)),
        )
        rows.append({"task_id": layer.task_id, "diagnosis": result.verdict,
                     "evidence": result.evidence})  # fmt: skip
    return pd.DataFrame(rows, columns=["task_id", "diagnosis", "evidence"])


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.4g} ms"
