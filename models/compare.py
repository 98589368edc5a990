"""Our compiled network next to onnxruntime: same seeded input, same thread count,
outputs compared, latencies timed round by round (interleaved, settled)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from compiler.measure.interleave import interleaved, median_ratio
from compiler.runtime import set_num_threads
from models.network import Network


def seeded_inputs(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs of each input's dtype: normal floats, and 0 or 1 for integer and
    boolean inputs (valid token ids, positions and masks for any vocabulary)."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in net.graph.inputs:
        dtype = np.dtype(getattr(v, "dtype", "float32"))
        if dtype.kind == "f":
            out[v.name] = rng.standard_normal(v.shape).astype(dtype)
        else:
            out[v.name] = rng.integers(0, 2, v.shape).astype(dtype)
    return out


def ort_session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    """onnxruntime with every graph optimization on and `threads` intra-op threads."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def max_errors(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> tuple[float, float]:
    """(max abs error, max over outputs of max|ours - theirs| / max|theirs|)."""
    abs_err, rel_err = 0.0, 0.0
    for name, ref in theirs.items():
        diff = float(np.max(np.abs(ours[name].astype(np.float64) - ref)))
        abs_err = max(abs_err, diff)
        rel_err = max(rel_err, diff / max(float(np.max(np.abs(ref))), 1e-30))
    return abs_err, rel_err


@dataclass(frozen=True)
class Comparison:
    latency_ms: float
    onnxruntime_latency_ms: float
    ratio: float  # onnxruntime / ours, median over rounds (> 1: we are faster)
    max_abs_err: float
    max_rel_err: float


def compare(
    net: Network, model: onnx.ModelProto, *, threads: int, rounds: int = 7, repeat: int = 5
) -> Comparison:
    """Check outputs, then time both contenders interleaved on the same input."""
    set_num_threads(threads)
    session = ort_session(model, threads)
    inputs = seeded_inputs(net)
    ours = net.run(inputs)
    names = [o.name for o in session.get_outputs()]
    theirs = dict(zip(names, session.run(names, inputs)))
    abs_err, rel_err = max_errors(ours, theirs)
    ours_s, theirs_s = interleaved(
        net.run_bound, lambda: session.run(names, inputs), rounds, repeat
    )
    ratio = median_ratio(ours_s, theirs_s)
    return Comparison(
        statistics.median(ours_s) * 1e3,
        statistics.median(theirs_s) * 1e3,
        ratio,
        abs_err,
        rel_err,
    )
