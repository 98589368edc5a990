"""Runs inside a runner process: seeded inputs, the reference check and the timing loop."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from functools import cache

import numpy as np

from compiler.codegen.build import Artifact
from compiler.measure.types import ErrorKind, MeasureSettings, RunRequest

_REFERENCES: dict[tuple[str, int], list[np.ndarray]] = {}  # (workload key, seed) -> outputs
_FALLBACK_LLC_BYTES = 64 << 20
_MAX_FLUSH_BYTES = 64 << 20  # virtual machines report huge shared L3s (516 MB here)
OVERRUN = 4  # a repeat stops after this many times min_repeat_ms


def init_runner(cores: tuple[int, ...], threads: int) -> None:
    """Pin this process to the device's cores and set the kernels' thread count (the
    thread pool's, compiler/runtime/pool.c: its workers start at the first parallel
    loop, after the pinning, so they run on the device's cores too)."""
    from compiler.runtime import set_num_threads

    if cores:
        os.sched_setaffinity(0, cores)
    set_num_threads(threads)


def run_candidate(
    req: RunRequest, settings: MeasureSettings
) -> tuple[tuple[float, ...], ErrorKind | None, str]:
    """(costs per repeat, error kind, message) of one candidate."""
    from compiler.runtime import load

    arrays = make_arrays(req.artifact, req.n_inputs, settings.seed)
    kernel = load(req.artifact)  # owns the code: keep it alive while `call` runs
    call = kernel.bind(*arrays)
    if settings.check and req.reference is not None:
        expected = reference_outputs(req, settings.seed)
        call()
        problem = compare(arrays[req.n_inputs :], expected)
        if problem:
            return (), ErrorKind.WRONG_RESULT, problem
    return tuple(time_calls(call, settings)), None, ""


def make_arrays(artifact: Artifact, n_inputs: int, seed: int) -> list[np.ndarray]:
    """Seeded random inputs in [-1, 1) (small integers for integer inputs), NaN-filled outputs."""
    from compiler.runtime import empty

    rng = np.random.default_rng(seed)
    arrays = []
    for k, spec in enumerate(artifact.params):
        a = empty(spec.shape, spec.dtype)
        if k >= n_inputs:
            a[...] = np.nan if a.dtype.kind == "f" else 0
        elif a.dtype.kind == "f":
            a[...] = rng.uniform(-1.0, 1.0, spec.shape)
        else:
            a[...] = rng.integers(0, 4, spec.shape)
        arrays.append(a)
    return arrays


def reference_outputs(req: RunRequest, seed: int) -> list[np.ndarray]:
    """The default schedule's outputs for the seeded inputs, computed once per workload."""
    from compiler.runtime import load

    key = (req.workload_key, seed)
    if key not in _REFERENCES:
        assert req.reference is not None
        arrays = make_arrays(req.reference, req.n_inputs, seed)
        load(req.reference)(*arrays)
        _REFERENCES[key] = arrays[req.n_inputs :]
    return _REFERENCES[key]


def compare(got: list[np.ndarray], expected: list[np.ndarray]) -> str:
    """'' when every output matches within float32 reordering error, else the worst miss."""
    for k, (g, e) in enumerate(zip(got, expected)):
        finite = np.abs(e[np.isfinite(e)])
        scale = float(finite.max()) if finite.size else 1.0
        ok = np.isclose(g, e, rtol=1e-3, atol=1e-4 * max(scale, 1e-30), equal_nan=True)
        if not ok.all():
            bad = int(np.argmin(ok.reshape(-1)))
            return (
                f"output {k}: {int((~ok).sum())} of {ok.size} elements differ from the default "
                f"schedule's, e.g. flat index {bad}: {g.reshape(-1)[bad]!r} != {e.reshape(-1)[bad]!r}"
            )
    return ""


def time_calls(call: Callable[[], None], s: MeasureSettings) -> list[float]:
    """Seconds per call for each repeat, after a discarded warm-up call.

    `number` starts at the setting, raised so a repeat lasts `min_repeat_ms`
    (a short repeat is redone with more calls); a repeat that runs past
    `OVERRUN` times its target (the machine slowed down) stops early and
    counts the calls it made.
    """
    warm_up_s = _timed(call, 1, math.inf)[0]
    number = 1 if s.flush else max(s.number, _calls_for(warm_up_s, s.min_repeat_ms))
    budget_s = math.inf if s.flush else OVERRUN * s.min_repeat_ms * 1e-3
    costs = []
    for r in range(s.repeat):
        if r and s.cooldown_s:
            time.sleep(s.cooldown_s)
        if s.flush:
            flush_caches()
        elapsed, calls = _timed(call, number, budget_s)
        while not s.flush and elapsed * 1e3 < s.min_repeat_ms:  # the estimate was short
            number = max(number + 1, _calls_for(elapsed / calls, s.min_repeat_ms))
            elapsed, calls = _timed(call, number, budget_s)
        costs.append(elapsed / calls)
    return costs


def _calls_for(per_call_s: float, min_repeat_ms: float) -> int:
    return math.ceil(min_repeat_ms * 1e-3 / max(per_call_s, 1e-9) * 1.1)


def _timed(call: Callable[[], None], number: int, budget_s: float) -> tuple[float, int]:
    """(seconds, calls) of up to `number` calls, stopping once `budget_s` has passed."""
    start = time.perf_counter()
    for done in range(1, number + 1):
        call()
        if time.perf_counter() - start > budget_s:
            return time.perf_counter() - start, done
    return time.perf_counter() - start, number


def flush_caches() -> None:
    """Overwrite a buffer twice the last-level cache (at most 64 MB), evicting the kernel's data."""
    buf = _flush_buffer()
    buf += 1


@cache
def _flush_buffer() -> np.ndarray:
    return np.zeros(min(2 * _llc_bytes(), _MAX_FLUSH_BYTES) // 8, dtype=np.int64)


def _llc_bytes() -> int:
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        levels = sorted(d for d in os.listdir(base) if d.startswith("index"))
        with open(f"{base}/{levels[-1]}/size") as f:
            text = f.read().strip()
        return int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]]
    except (OSError, ValueError, KeyError, IndexError):
        return _FALLBACK_LLC_BYTES
