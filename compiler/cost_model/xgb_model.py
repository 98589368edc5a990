"""XGBoost cost model on per-store feature rows (Ansor's XGBModel, docs/search.md#cost-model).

A program's score is the sum of its rows' predictions. Training uses Ansor's
"pack-sum" squared error as a custom objective: the gradient of a row is
(sum of its program's row predictions - label) x weight, so the sum, not each
row, is fitted. (The cheaper alternative, giving every row label / n_rows with
the built-in squared error, asks every store to carry an equal share, which a
reduction's init store cannot do; the pack-sum objective costs one bincount a
boosting round.) Label: best latency of the task / this latency (failed: 0);
weight: the label, floored at `min_weight` so failed and slow programs still
pull their scores down a little (Ansor's pure label weight ignores them).

One model serves every task; labels are normalized per task (workload key).
Until `warmup_samples` measurements exist it predicts random scores. It
retrains from scratch when this run's own measurements grew by at least 20 %
since the last fit (at least 20 % of `warmup_samples`, after a warm start),
holding out `valid_fraction` of the programs for early stopping (on the
training loss while that would be fewer than MIN_VALID_PROGRAMS programs).
`warm_start` adds earlier runs' programs (training_file.py) and fits at once:
every later fit trains on them and this run's measurements together.
One thread by default (`nthread`): the data are small (192 programs of a conv
task, 988 rows: 0.08 s to fit on one core, 0.06 s on two) and with two OpenMP
threads on a machine where anything else runs, each boosting round waits on a
preempted thread: the same task's first 3 fits took 21 s beside another benchmark.
`min_weight` 0.2 was the best of 0, 0.05, 0.2, 1 on held-out pairwise accuracy
(0.66, 0.68, 0.72, 0.72 over 5 splits of 100 measured 64^3 matmul schedules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb

from compiler.cost_model.dataset import Cost, Dataset, Packed
from compiler.cost_model.features import extract_features
from compiler.cost_model.layout import N_FEATURES
from compiler.cost_model.model import CostModel
from compiler.records.record import steps_hash
from compiler.schedule.state import State
from compiler.schedule.steps import steps_to_json

if TYPE_CHECKING:
    from compiler.cost_model.warm_start import WarmStart

XGB_PARAMS = {
    "max_depth": 10,
    "gamma": 0.001,
    "min_child_weight": 0,
    "eta": 0.2,
    "base_score": 0.0,  # a program's score is a plain sum of row predictions
    "disable_default_eval_metric": 1,
    "tree_method": "hist",
    "verbosity": 0,
}
MAX_ROUNDS = 10_000
EARLY_STOPPING_ROUNDS = 50
RETRAIN_GROWTH = 0.2
# A held-out set smaller than this stopped boosting after 1-3 rounds on a 70-program
# matmul run (held-out pairwise accuracy 0.71 vs 0.735 stopping on the training loss).
MIN_VALID_PROGRAMS = 40


class XGBModel(CostModel):
    """Pack-sum XGBoost over per-store features, shared by all tasks."""

    kind = "xgb"

    def __init__(
        self,
        *,
        seed: int = 0,
        nthread: int | None = 1,
        warmup_samples: int = 64,
        valid_fraction: float = 0.2,
        min_weight: float = 0.2,
    ):
        self.seed = seed
        self.nthread = nthread
        self.warmup_samples = warmup_samples
        self.valid_fraction = valid_fraction
        self.min_weight = min_weight
        self.rng = np.random.default_rng(seed)
        self.data = Dataset()
        self.booster: xgb.Booster | None = None
        self.trained_on = 0  # samples in the data at the last fit
        self.trained_live = 0  # of which measured by this run (not a warm start's)
        self.prior_programs = 0  # programs of earlier runs it started from (warm_start)
        self.warm: WarmStart | None = None  # keeps the training data on disk (warm_start.py)

    # ------------------------------------------------------------ interface

    def update(self, states: Sequence[State], costs_s: Sequence[Cost]) -> None:
        if len(states) != len(costs_s):
            raise ValueError(f"update: {len(states)} states but {len(costs_s)} costs")
        by_task: dict[str, list[int]] = {}
        for i, s in enumerate(states):
            by_task.setdefault(s.dag.workload_key, []).append(i)
        for key, idx in by_task.items():
            feats = extract_features([states[i] for i in idx])
            ids = [steps_hash(steps_to_json(states[i].steps)) for i in idx]
            self.data.add(key, feats, [costs_s[i] for i in idx], ids)
        if self._should_retrain():
            self.fit()
        if self.warm is not None:
            self.warm.after_update(self)

    def warm_start(self, workloads: Iterable[tuple[str, Sequence[str], Sequence, Sequence]]) -> int:
        """Learn from earlier runs' programs, (workload key, ids, costs_s, feature rows)
        per workload, and fit at once if there are `warmup_samples` programs in all;
        how many programs were added. This run's measurements of the same programs
        replace them."""
        added = 0
        for key, ids, costs, rows in workloads:
            added += self.data.add(key, rows, costs, ids, prior=True)
        self.prior_programs += added
        if added and len(self.data) >= self.warmup_samples:
            self.fit()
        return added

    def predict(self, states: Sequence[State]) -> np.ndarray:
        if self.booster is None:
            return self.rng.random(len(states))
        return self.predict_features(extract_features(states))

    @property
    def is_trained(self) -> bool:
        """Whether it predicts from features (until then, at random)."""
        return self.booster is not None

    def prefetch(self, states: Sequence[State]) -> None:
        """Their features, into the cache (an untrained model predicts without them)."""
        extract_features(states)

    def predict_features(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Scores from feature arrays (one [n_stores, N_FEATURES] array a program)."""
        assert self.booster is not None
        counts = np.array([len(f) for f in features], dtype=np.int64)
        scores = np.full(len(features), -np.inf)
        if not counts.sum():
            return scores
        rows = np.concatenate([f for f in features if len(f)])
        row_pred = self.booster.inplace_predict(rows, predict_type="margin")
        ids = np.repeat(np.arange(len(features)), counts)
        sums = np.bincount(ids, weights=row_pred, minlength=len(features))
        return np.where(counts > 0, sums, -np.inf)

    # ------------------------------------------------------------- training

    def _should_retrain(self) -> bool:
        if len(self.data) < self.warmup_samples:
            return False
        if self.booster is None:
            return True
        grown = self.data.n_live - self.trained_live
        return grown > 0 and grown >= RETRAIN_GROWTH * max(self.trained_live, self.warmup_samples)

    def fit(self) -> None:
        """Train from scratch on all data (a no-op without any program that ran)."""
        packed = self.data.pack()
        if packed.n_programs < 2 or not packed.labels.any():
            return
        order = self.rng.permutation(packed.n_programs)
        n_valid = int(len(order) * self.valid_fraction)
        if n_valid < MIN_VALID_PROGRAMS:
            n_valid = 0  # too few to hold out: stop on the training loss, as Ansor does
        train = packed.subset(np.sort(order[n_valid:]))
        valid = packed.subset(np.sort(order[:n_valid])) if n_valid else train
        self.booster = _train(train, valid, self._params(), self.min_weight)
        self.trained_on = len(self.data)
        self.trained_live = self.data.n_live

    def _params(self) -> dict[str, Any]:
        params = dict(XGB_PARAMS, seed=self.seed)
        if self.nthread is not None:
            params["nthread"] = self.nthread
        return params

    # ------------------------------------------------------------ save/load

    def to_json(self) -> dict[str, Any]:
        booster = None
        if self.booster is not None:
            booster = bytes(self.booster.save_raw(raw_format="json")).decode()
        return {
            "kind": self.kind,
            "options": {
                "seed": self.seed,
                "nthread": self.nthread,
                "warmup_samples": self.warmup_samples,
                "valid_fraction": self.valid_fraction,
                "min_weight": self.min_weight,
            },
            "n_features": N_FEATURES,
            "trained_on": self.trained_on,
            "booster": booster,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> XGBModel:
        if obj.get("n_features") != N_FEATURES:
            raise ValueError(
                f"saved model has {obj.get('n_features')} features, this version {N_FEATURES}"
            )
        model = cls(**obj["options"])
        model.trained_on = int(obj.get("trained_on", 0))
        if obj.get("booster"):
            model.booster = xgb.Booster(params=model._params())
            model.booster.load_model(bytearray(obj["booster"].encode()))
        return model


def _dmatrix(p: Packed, min_weight: float) -> xgb.DMatrix:
    weights = np.maximum(p.labels, min_weight)[p.pack_ids]
    return xgb.DMatrix(p.rows, label=p.labels[p.pack_ids], weight=weights)


def _train(train: Packed, valid: Packed, params: dict[str, Any], min_weight: float):
    """Boost with the pack-sum objective, stop early on the held-out pack-sum RMSE,
    and keep the trees up to the best round."""
    dtrain = _dmatrix(train, min_weight)
    dvalid = dtrain if valid is train else _dmatrix(valid, min_weight)
    packs = {id(dtrain): train, id(dvalid): valid}

    def pack_sum_square_error(pred: np.ndarray, d: xgb.DMatrix):
        p = packs[id(d)]
        sums = np.bincount(p.pack_ids, weights=pred, minlength=p.n_programs)
        w = d.get_weight()
        return (sums[p.pack_ids] - d.get_label()) * w, w

    def pack_sum_rmse(pred: np.ndarray, d: xgb.DMatrix):
        p = packs[id(d)]
        sums = np.bincount(p.pack_ids, weights=pred, minlength=p.n_programs)
        return "p-rmse", float(np.sqrt(np.mean((sums - p.labels) ** 2)))

    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=MAX_ROUNDS,
        evals=[(dvalid, "valid")],
        obj=pack_sum_square_error,
        custom_metric=pack_sum_rmse,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    best = getattr(booster, "best_iteration", None)
    return booster[: best + 1] if best is not None else booster
