"""The learned cost model: per-store features of the lowered program, and models
that score schedule states (higher = predicted faster).

    >>> from compiler import cost_model
    >>> model = cost_model.create("xgb", seed=0)
    >>> model.update(measured_states, costs_s)
    >>> scores = model.predict(candidates)
    >>> rows = cost_model.extract_features(candidates)  # [n_stores, N_FEATURES] each
    >>> warm = cost_model.warm_start.attach(model, "runs/records.db", target)  # doctest: +SKIP

`warm_start` starts a model from the training data every earlier run on this CPU
left beside the records database (`<db>.features.npz`, training_file.py).
"""

from compiler.cost_model import warm_start
from compiler.cost_model.features import (
    clear_cache,
    extract_features,
    state_features,
    state_key,
)
from compiler.cost_model.layout import FEATURE_NAMES, N_FEATURES
from compiler.cost_model.model import CostModel, RandomModel, Record, create, load

__all__ = [
    "FEATURE_NAMES",
    "N_FEATURES",
    "CostModel",
    "RandomModel",
    "Record",
    "clear_cache",
    "create",
    "extract_features",
    "load",
    "state_features",
    "state_key",
    "warm_start",
]
