"""Feature extraction for schedule states: lower, then one row per store.

    >>> feats = extract_features([state_a, state_b])   # [n_stores, N_FEATURES] each
    >>> FEATURE_NAMES[:3]
    ('float_mad', 'float_addsub', 'float_mul')

Deviation: the rows come from the loop program before its last simplification
pass (Ansor extracts them from the simplified IR). Guards that simplification
would prove true and unsimplified index arithmetic stay in the counts; on the
records of real runs the model ranks as well either way and extraction is
1.2-1.4x faster (held-out pairwise accuracy over 5 splits, simplified vs not:
ResNet-18 sketch records 0.837 vs 0.844, BERT 0.839 vs 0.848, template records
of the two ResNet-18 convs and matmul 0.877/0.883/0.894 vs 0.873/0.885/0.905;
292 -> 356 and 347 -> 414 states/s on one core).

A state is fully determined by (workload key, step list) (docs/architecture.md#state), so rows
are cached under that key: the evolutionary search scores the survivors of
one generation again in the next, and the cost model re-reads every measured
state at each retraining. A state that does not lower (an unfilled sketch, an
illegal step list) gets zero rows; the cost model scores it -inf.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np

from compiler.cost_model import feature_pool
from compiler.cost_model.layout import FEATURE_NAMES, N_FEATURES
from compiler.cost_model.store_features import program_features
from compiler.lower.lower import lower
from compiler.schedule.state import State
from compiler.schedule.steps import ScheduleError

CACHE_ENTRIES = 65536  # about 2 KB a state: up to ~130 MB at the cap

_cache: OrderedDict[Hashable, np.ndarray] = OrderedDict()
_EMPTY = np.zeros((0, N_FEATURES), np.float32)
_EMPTY.flags.writeable = False


def state_key(state: State) -> tuple[str, tuple]:
    """(workload key, steps): what determines a state's program."""
    return state.dag.workload_key, tuple(state.steps)


def state_features(state: State) -> np.ndarray:
    """[n_stores, N_FEATURES] float32 rows of one state (read-only, cached)."""
    key = state_key(state)
    got = _cache.get(key)
    if got is not None:
        _cache.move_to_end(key)
        return got
    return _remember(key, _compute(state))


def _remember(key: Hashable, rows: np.ndarray) -> np.ndarray:
    rows.flags.writeable = False
    _cache[key] = rows
    if len(_cache) > CACHE_ENTRIES:
        _cache.popitem(last=False)
    return rows


def extract_features(states: Sequence[State]) -> list[np.ndarray]:
    """One [n_stores, N_FEATURES] float32 array per state, in order. A batch of
    states not in the cache is computed on all cores (`feature_pool`)."""
    missing: dict[Hashable, State] = {}
    for s in states:
        key = state_key(s)
        if key not in _cache:
            missing.setdefault(key, s)
    by_dag: dict[str, list[State]] = {}
    for s in missing.values():
        by_dag.setdefault(s.dag.workload_key, []).append(s)
    for group in by_dag.values():
        rows = feature_pool.compute_rows(group[0].dag, group, _compute)
        for s, got in zip(group, rows):
            _remember(state_key(s), _EMPTY if got is None else got)
    return [state_features(s) for s in states]


def clear_cache() -> None:
    _cache.clear()


def _compute(state: State) -> np.ndarray:
    try:
        func = lower(state, simplify=False)
    except (ScheduleError, ValueError, KeyError):
        return _EMPTY
    return program_features(func, _unroll_steps(state))


def _unroll_steps(state: State) -> dict[str, int]:
    """Buffer name (as lowering names it) -> its stage's auto_unroll_max_step."""
    return {
        re.sub(r"\W", "_", s.name) or "v": s.auto_unroll_max_step
        for s in state.stages
        if s.auto_unroll_max_step
    }


__all__ = [
    "FEATURE_NAMES",
    "N_FEATURES",
    "clear_cache",
    "extract_features",
    "state_features",
    "state_key",
]
