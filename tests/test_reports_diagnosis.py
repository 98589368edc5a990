"""Each diagnosis rule fires on data made to trigger it, and not on data made not to."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from compiler.measure.peak import Peak
from compiler.records import MeasureRecord
from reports.diagnosis import (
    AT_ROOFLINE,
    FAR_BELOW,
    MIN_TRIALS,
    MIN_WINDOW,
    SEARCH_SOURCE,
    diagnose,
    diagnose_layer,
)
from reports.run import records_frame
from reports.tables import layer_table

PEAK = Peak(gflops=200.0, gbytes_s=20.0)
FLAT = [4e-3, 3e-3, 2e-3] + [2e-3] * 70  # improved early, flat for the last 70 trials


def verdict(costs=FLAT, share=0.3, **kw):
    """Diagnose a layer running at `share` of a 100 GFLOP/s roofline bound."""
    args = {"costs_s": costs, "gflops": 100.0 * share, "roofline_gflops": 100.0,
            "intensity": 5.0, "peak": PEAK}  # fmt: skip
    return diagnose_layer(**{**args, **kw})


def test_untuned_only_without_a_valid_measurement():
    assert verdict(costs=[math.nan] * 5).verdict == "untuned"
    assert "5 trials" in verdict(costs=[math.nan] * 5).evidence
    assert verdict(costs=[math.nan] * 4 + [1e-3]).verdict != "untuned"


def test_search_problem_when_a_template_found_a_clearly_faster_program():
    found = {SEARCH_SOURCE: 2e-3, "template dense_pack": 1e-3}
    got = verdict(best_by_source=found, policy="sketch")
    assert got.verdict == "search problem"
    assert "template dense_pack" in got.evidence and "2.00x faster" in got.evidence
    close = {SEARCH_SOURCE: 1.1e-3, "template dense_pack": 1e-3}
    assert verdict(best_by_source=close, policy="sketch").verdict != "search problem"
    # the run's own search being the faster one is no search problem either
    ahead = {SEARCH_SOURCE: 1e-3, "template dense_pack": 3e-3}
    assert verdict(best_by_source=ahead, policy="sketch").verdict != "search problem"


def test_search_problem_for_a_template_run_when_the_sketch_search_beat_it():
    found = {SEARCH_SOURCE: 1e-3, "template dense_pack": 3e-3}
    got = verdict(best_by_source=found, policy="template")
    assert got.verdict == "search problem" and SEARCH_SOURCE in got.evidence


def test_search_problem_when_the_cost_model_ranks_candidates_badly():
    got = verdict(ranking_accuracy=0.52)
    assert got.verdict == "search problem" and "0.52" in got.evidence
    assert verdict(ranking_accuracy=0.9).verdict != "search problem"


def test_still_improving_when_the_curve_moved_in_its_last_trials():
    moving = [4e-3] * 60 + [3e-3] * 5 + [2e-3] * 5
    got = verdict(costs=moving)
    assert got.verdict == "still improving"
    assert (
        f"last {len(moving) // 4} of {len(moving)} trials" in got.evidence and "%" in got.evidence
    )
    assert verdict(costs=FLAT).verdict != "still improving"


def test_still_improving_when_there_are_too_few_trials_to_tell():
    got = verdict(costs=[2e-3] * MIN_WINDOW)
    assert got.verdict == "still improving" and f"only {MIN_WINDOW} trials" in got.evidence
    flat_but_short = verdict(costs=[2e-3] * (MIN_TRIALS - 1), share=0.1)
    assert flat_but_short.verdict == "still improving"  # no plateau verdict before one round
    assert verdict(costs=[2e-3] * MIN_TRIALS, share=0.1).verdict == "representation problem"


def test_at_roofline_when_plateaued_near_the_bound():
    got = verdict(share=AT_ROOFLINE + 0.1)
    assert got.verdict == "at roofline" and "0.90 of the 100.0 GFLOP/s roofline" in got.evidence
    assert verdict(share=AT_ROOFLINE - 0.1).verdict != "at roofline"


def test_representation_problem_when_plateaued_far_below_the_bound():
    got = verdict(share=0.21)
    assert got.verdict == "representation problem"
    assert "plateaued at 21.0 GFLOP/s = 0.21 of the 100.0 GFLOP/s roofline" in got.evidence
    assert "intensity 5 FLOP/byte" in got.evidence and "flat over the last" in got.evidence
    assert verdict(share=FAR_BELOW + 0.1).verdict == "plateaued"
    assert verdict(share=0.21, costs=[4e-3] * 30 + [2e-3] * 10).verdict == "still improving"


# ---------------------------------------------------------------- from records


def _records(key: str, costs: list[float], template: str = "", start: float = 0.0):
    return [
        MeasureRecord(
            workload_key=key, target="t", steps=[{"k": i}], costs_s=(c,) if c else (),
            error_kind=None if c else "BUILD_ERROR", timestamp=start + i,
            settings={"template": {"name": template, "index": i}} if template else {},
        )
        for i, c in enumerate(costs)
    ]  # fmt: skip


def _tasks(n: int, flops: int) -> pd.DataFrame:
    # 1024x1024x1024 matmul-sized tasks: intensity 1024*2/12 FLOP/byte, compute-bound
    shapes = [[1024, 1024], [1024, 1024], [1024, 1024]]
    return pd.DataFrame(
        [{"id": k, "name": f"t{k}", "workload_key": f"k{k}", "ops": ["matmul"],
          "shapes": shapes, "weight": 1, "flops": flops} for k in range(n)]
    )  # fmt: skip


def test_diagnose_reads_templates_from_record_settings_and_the_roofline_from_the_table():
    flops = 2 * 1024**3
    at_peak_s = flops / (PEAK.gflops * 1e9)
    recs = (
        _records("k0", [3 * at_peak_s] * 80)  # search only, flat at a third of peak
        + _records("k0", [1.0 * at_peak_s] * 2, template="dense_pack", start=100)
        + _records("k1", [at_peak_s * 1.05] * 80)  # flat at 0.95 of peak
        + _records("k2", [at_peak_s * 8] * 80)  # flat at 1/8 of peak
        + _records("k3", [None] * 3)  # only failures
    )
    frame = records_frame(recs)
    assert frame["template"].tolist().count("dense_pack") == 2
    layers = layer_table(_tasks(4, flops), frame, PEAK)
    got = diagnose(layers, frame, PEAK, policy="sketch").set_index("task_id")["diagnosis"]
    assert got.to_dict() == {
        0: "search problem",
        1: "at roofline",
        2: "representation problem",
        3: "untuned",
    }
    assert layers.loc[3, "trials"] == 3 and layers.loc[3, "errors"] == 3
    assert layers["roofline_gflops"].tolist()[:3] == pytest.approx([PEAK.gflops] * 3)
