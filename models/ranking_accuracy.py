"""How well the cost model ranks a task's candidates (profile.json's
`cost_model_accuracy`, models.ort_profile): an XGBoost model trained on the earlier
half of the task's valid records (time order), judged on the pairs of the later half."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compiler.cost_model import create as create_cost_model
from compiler.records import RecordStore
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError, steps_from_json
from models.partition import TuningTask

# valid records a task needs for a ranking accuracy: one Ansor round, so the model learns
# from 32 and is judged on 496 pairs. With a warm-up's 20 (10 and 45 pairs) the figure was
# noise, 0.29-0.56 on resnet18's tasks, and called 15 of 18 layers a search problem.
RANKING_MIN_RECORDS = 64
RANKING_MAX_RECORDS = 256  # the latest this many are used (feature extraction costs)


def ranking_accuracy(task: TuningTask, store: RecordStore, target: str) -> float | None:
    """Pairwise accuracy of a cost model trained on the task's earlier valid records,
    on its later ones (None with fewer than RANKING_MIN_RECORDS)."""
    recs = sorted(
        (
            r
            for r in store.records(task.workload_key)
            if r.target == target and r.error_kind is None
        ),
        key=lambda r: r.timestamp,
    )[-RANKING_MAX_RECORDS:]
    states, costs = [], []
    for r in recs:
        try:
            states.append(State.replay(task.dag, steps_from_json(r.steps)))
        except (ScheduleError, KeyError, TypeError, ValueError):
            continue  # a record of an older step language
        costs.append(r.mean_cost_s)
    if len(states) < RANKING_MIN_RECORDS:
        return None
    half = len(states) // 2
    model = create_cost_model("xgb", seed=0)
    model.update(states[:half], costs[:half])
    return pairwise_accuracy(model.predict(states[half:]), costs[half:])


def pairwise_accuracy(
    scores: Sequence[float] | np.ndarray, costs_s: Sequence[float]
) -> float | None:
    """Of the pairs with different costs, the fraction whose scores (higher = predicted
    faster) are ordered the same way; a tie in scores counts half. None without pairs."""
    s, c = np.asarray(scores, float), np.asarray(costs_s, float)
    i, j = np.triu_indices(len(c), k=1)
    differ = c[i] != c[j]
    if not differ.any():
        return None
    i, j = i[differ], j[differ]
    faster = c[i] < c[j]
    agree = np.where(s[i] == s[j], 0.5, (s[i] > s[j]) == faster)
    return float(agree.mean())
