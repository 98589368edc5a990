"""Warm start across runs and models (compiler/cost_model/training_file.py, warm_start.py):
the training-data file beside the records database is written, read back equal, capped,
refused when it is of another format or another user could have written it; a model
warm-started from one matmul's measured programs ranks another matmul's programs better
than a cold model (real lowered programs, costs measured for real)."""

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from compiler import ops, te
from compiler.codegen import CodegenError, build
from compiler.cost_model import FEATURE_NAMES, N_FEATURES, create, extract_features
from compiler.cost_model.training_file import (
    KEEP_BEST,
    StaleTrainingFile,
    TrainingData,
    TrainingFileError,
    read_training_file,
    training_path,
    update_training_file,
    write_training_file,
)
from compiler.cost_model.warm_start import attach
from compiler.lower.lower import lower
from compiler.records.record import steps_hash
from compiler.runtime import empty, set_num_threads
from compiler.runtime import load as load_kernel
from compiler.schedule.state import State
from compiler.schedule.steps import steps_to_json
from compiler.search.annotate import AnnotateConfig, sample_population
from compiler.search.sketch import generate_sketches
from compiler.te.dag import ComputeDAG
from models.ranking_accuracy import pairwise_accuracy

UNROLL_PROD = FEATURE_NAMES.index("unroll_prod")
MAX_UNROLLED = 64  # skip schedules whose unrolled bodies make compilation slow
CPU = "llvm -mcpu=test -num-cores=1"


def matmul_dag(m: int, n: int, k: int) -> ComputeDAG:
    a, b = te.placeholder((m, k), name="A"), te.placeholder((k, n), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def sample_states(dag: ComputeDAG, n: int, seed: int) -> list[State]:
    """Distinct programs as a tuning run proposes them: sketches, randomly annotated."""
    rng = np.random.default_rng(seed)
    pool = sample_population(
        generate_sketches(dag, cores=1), 3 * n, rng, AnnotateConfig(cores=1, vector_cap=64)
    )
    out, seen = [], set()
    for s in pool:
        f = extract_features([s])[0]
        if s.steps in seen or not len(f) or f[:, UNROLL_PROD].max() > math.log2(MAX_UNROLLED + 1):
            continue
        seen.add(s.steps)
        out.append(s)
    return out[:n]


def measure_s(state: State) -> float | None:
    """Best mean seconds a call over 3 repeats of about 0.5 ms; None if it fails to build."""
    func = lower(state)
    try:
        kernel = load_kernel(build(func))
    except CodegenError:
        return None
    arrays = [empty(p.shape) for p in func.params]
    for a in arrays:
        a[...] = 1.0
    call = kernel.bind(*arrays)
    call()
    t = time.perf_counter()
    call()
    number = max(1, int(5e-4 / max(time.perf_counter() - t, 1e-7)))
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def ids(states: list[State]) -> list[str]:
    return [steps_hash(steps_to_json(s.steps)) for s in states]


@pytest.fixture(scope="module")
def two_matmuls():
    """(states, costs) of a 64x64x64 matmul (the earlier run) and of a 48x96x80 one
    (the new model's task), measured on this machine."""
    set_num_threads(1)
    out = []
    for shape, n, seed in (((64, 64, 64), 120, 0), ((48, 96, 80), 60, 1)):
        states = sample_states(matmul_dag(*shape), n, seed)
        out.append((states, [measure_s(s) for s in states]))
    return out


def small_data(two_matmuls, n: int = 20) -> TrainingData:
    states, costs = two_matmuls[0]
    data = TrainingData()
    key = states[0].dag.workload_key
    data.add(CPU, key, ids(states[:n]), costs[:n], extract_features(states[:n]), updated=1.0)
    data.add("llvm -mcpu=other", key, ids(states[:3]), costs[:3], extract_features(states[:3]), 1.0)
    return data


# ------------------------------------------------------------------ the file


def test_file_is_written_private_and_read_back_equal(two_matmuls, tmp_path):
    data = small_data(two_matmuls)
    path = training_path(tmp_path / "records.db")
    assert path.name == "records.db.features.npz"
    write_training_file(path, data)
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = read_training_file(path)
    assert again == data and len(again) == 23
    g = again.groups[(CPU, two_matmuls[0][0][0].dag.workload_key)]
    assert all(r.dtype == np.float32 and r.shape[1] == N_FEATURES for r in g.rows)
    assert read_training_file(tmp_path / "missing.npz") is None
    with np.load(path, allow_pickle=False) as npz:  # plain arrays, no object array anywhere
        assert all(npz[name].dtype != object for name in npz.files)


def test_merges_keep_every_run_and_target(two_matmuls, tmp_path):
    path = tmp_path / "db.features.npz"
    states, costs = two_matmuls[0]
    key = states[0].dag.workload_key
    first, second = TrainingData(), TrainingData()
    first.add(CPU, key, ids(states[:10]), costs[:10], extract_features(states[:10]))
    second.add(CPU, key, ids(states[5:15]), costs[5:15], extract_features(states[5:15]))
    second.add("llvm -mcpu=other", key, ids(states[:2]), costs[:2], extract_features(states[:2]))
    update_training_file(path, first)
    written = update_training_file(path, second)
    assert len(written.groups[(CPU, key)]) == 15  # the overlap once
    assert len(written.groups[("llvm -mcpu=other", key)]) == 2
    assert read_training_file(path) == written


def test_capped_keeps_the_best_and_a_stable_sample(two_matmuls):
    states, costs = two_matmuls[0]
    rows = extract_features(states)
    data = TrainingData()
    costs = [c if c is not None else math.inf for c in costs]
    data.add(CPU, "w1", ids(states), costs, rows, updated=2.0)
    data.add(CPU, "w0", ids(states[:50]), costs[:50], rows[:50], updated=1.0)
    capped = data.capped(per_workload=80, keep_best=KEEP_BEST, max_programs=100)
    assert list(capped.groups) == [(CPU, "w1")]  # 80 + 50 > 100: the older workload goes
    kept = capped.groups[(CPU, "w1")]
    assert len(kept) == 80
    fastest = sorted(c for c in costs if math.isfinite(c))[:KEEP_BEST]
    assert set(fastest) <= set(kept.costs_s) and min(kept.costs_s) == min(costs)
    # the sample does not depend on the order the programs came in
    other = TrainingData()
    order = np.random.default_rng(3).permutation(len(states))
    other.add(CPU, "w1", [ids(states)[i] for i in order], [costs[i] for i in order],
              [rows[i] for i in order])  # fmt: skip
    assert sorted(other.capped(80, KEEP_BEST).groups[(CPU, "w1")].ids) == sorted(kept.ids)


def test_refuses_another_format(two_matmuls, tmp_path):
    path = tmp_path / "db.features.npz"
    path.write_bytes(b"PK\x03\x04 not a zip at all")
    os.chmod(path, 0o600)
    with pytest.raises(TrainingFileError, match="not a cost-model training file"):
        read_training_file(path)
    np.savez(path.open("wb"), rows=np.zeros((2, N_FEATURES), np.float32))
    with pytest.raises(TrainingFileError, match="no format"):
        read_training_file(path)
    # an object array is a pickle: never loaded
    arrays = dict(np.load(_written(two_matmuls, tmp_path / "ok.npz"), allow_pickle=False))
    arrays["workload_keys"] = np.array([object()], dtype=object)
    with path.open("wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(TrainingFileError, match="not a cost-model training file"):
        read_training_file(path)
    with pytest.raises(TrainingFileError):  # and a run does not overwrite it
        update_training_file(path, small_data(two_matmuls))
    arrays = dict(np.load(tmp_path / "ok.npz", allow_pickle=False))
    arrays["feature_digest"] = np.array("0" * 64)  # another feature layout: stale
    with path.open("wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(StaleTrainingFile):
        read_training_file(path)
    update_training_file(path, small_data(two_matmuls))  # a stale file is replaced
    assert read_training_file(path) == small_data(two_matmuls).capped()


def _written(two_matmuls, path):
    write_training_file(path, small_data(two_matmuls))
    return path


def test_refuses_a_file_another_user_could_write(two_matmuls, tmp_path):
    db = tmp_path / "records.db"
    path = _written(two_matmuls, training_path(db))
    os.chmod(path, 0o666)
    with pytest.raises(TrainingFileError, match="writable by group or others"):
        read_training_file(path)
    before = path.read_bytes()
    model = create("xgb", seed=0, warmup_samples=8)
    warm = attach(model, db, CPU)
    assert not warm.writable and not model.is_trained and model.prior_programs == 0
    assert warm.start_line().startswith("warm start off: refusing")
    states, costs = two_matmuls[1]
    model.update(states[:10], costs[:10])
    assert "not written" in warm.save(model) and path.read_bytes() == before
    os.chmod(path, 0o600)
    link = tmp_path / "link.features.npz"
    link.symlink_to(path)
    with pytest.raises(TrainingFileError, match="symlink"):
        read_training_file(link)
    if os.getuid() == 0:  # root can give it away: another user's file is refused too
        os.chown(path, 12345, -1)
        with pytest.raises(TrainingFileError, match="owned by uid 12345"):
            read_training_file(path)


# ------------------------------------------------------------------ the model


def test_warm_model_ranks_a_new_tasks_programs_better_than_a_cold_one(two_matmuls, tmp_path):
    """The earlier run measured a 64x64x64 matmul; the new run's task is 48x96x80. A
    model warm-started from the file orders the new task's measured programs (pairs at
    least 1.1x apart) better than the cold model, which scores at random."""
    (old_states, old_costs), (new_states, new_costs) = two_matmuls
    db = tmp_path / "records.db"
    earlier = create("xgb", seed=0, warmup_samples=32)
    warm0 = attach(earlier, db, CPU)
    assert warm0.start_line().startswith("warm start: no programs")
    earlier.update(old_states, old_costs)
    assert "programs of 1 workload" in warm0.save(earlier)

    cold = create("xgb", seed=0, warmup_samples=32)
    warm_model = create("xgb", seed=0, warmup_samples=32)
    warm = attach(warm_model, db, CPU)
    assert warm.trained and warm_model.is_trained and not cold.is_trained
    assert (warm.programs, warm.workloads) == (len(old_states), 1)
    assert "trained on" in warm.start_line() and "of 1 workload" in warm.start_line()
    valid = [i for i, c in enumerate(new_costs) if c is not None]
    costs = [new_costs[i] for i in valid]
    held_out = [new_states[i] for i in valid]
    acc_warm = _accuracy(warm_model.predict(held_out), costs)
    acc_cold = _accuracy(cold.predict(held_out), costs)
    print(f"held-out pairwise accuracy: warm {acc_warm:.3f}, cold {acc_cold:.3f}")
    # 0.65-0.70 with 80-160 programs of the earlier run; the cold model's random scores 0.5
    assert acc_warm > 0.6 and acc_warm > acc_cold + 0.07
    # only this CPU's rows count
    other = create("xgb", seed=0, warmup_samples=32)
    assert attach(other, db, "llvm -mcpu=elsewhere").programs == 0 and not other.is_trained


def _accuracy(scores, costs, margin: float = 1.1) -> float:
    """pairwise_accuracy over the pairs at least `margin` apart (closer ones are noise)."""
    c, s = np.asarray(costs, float), np.asarray(scores, float)
    i, j = np.triu_indices(len(c), k=1)
    far = np.maximum(c[i], c[j]) >= margin * np.minimum(c[i], c[j])
    got = [pairwise_accuracy(s[[a, b]], c[[a, b]]) for a, b in zip(i[far], j[far])]
    return float(np.mean(got))


def test_a_model_starts_from_a_capped_share_of_a_large_file(two_matmuls, tmp_path, monkeypatch):
    from compiler.cost_model import warm_start

    states, costs = two_matmuls[0]
    data = TrainingData()
    for w in range(4):  # four workloads of 30 programs, the last one measured last
        sl = slice(30 * w, 30 * w + 30)
        data.add(CPU, f"w{w}", ids(states[sl]), costs[sl], extract_features(states[sl]), w)
    db = tmp_path / "records.db"
    write_training_file(training_path(db), data)
    monkeypatch.setattr(warm_start, "MAX_TRAIN_PROGRAMS", 50)
    monkeypatch.setattr(warm_start, "MIN_PER_WORKLOAD", 20)
    model = create("xgb", seed=0, warmup_samples=32)
    warm = attach(model, db, CPU)
    assert (warm.programs, warm.workloads, warm.in_file) == (40, 2, 120)
    assert set(model.data.tasks) == {"w3", "w2"}  # the newest workloads, 20 programs each
    assert "trained on 40 programs of 2 workloads (of 120)" in warm.start_line()


def test_own_measurements_replace_prior_ones_and_drive_retraining(two_matmuls, tmp_path):
    """A resumed run's records are the file's programs again: counted once, as this
    run's. Retraining counts this run's measurements only (the prior is no growth)."""
    states, costs = two_matmuls[0]
    db = tmp_path / "records.db"
    first = create("xgb", seed=0, warmup_samples=32)
    attach(first, db, CPU)
    first.update(states[:80], costs[:80])
    first.warm.save(first)

    model = create("xgb", seed=0, warmup_samples=32)
    warm = attach(model, db, CPU)
    n = warm.programs
    assert model.is_trained and model.data.n_live == 0 and len(model.data) == n
    model.update(states[:80], costs[:80])  # the same programs, measured by "this run"
    assert len(model.data) == n and model.data.n_live == n
    fits = model.trained_live
    model.update(states[80:85], costs[80:85])  # 5 < 20 % of 80: no refit
    assert model.trained_live == fits
    model.update(states[85:110], costs[85:110])
    assert model.trained_live == n + 30  # refit on the growth of its own data


def test_tune_op_warm_starts_from_the_last_run(tmp_path):
    db = tmp_path / "records.db"

    def tune(shape: str, *extra: str) -> subprocess.CompletedProcess:
        args = ["tune-op", "matmul", "--shape", shape, "--records", str(db), "--trials", "4"]
        return subprocess.run([sys.executable, "-m", "flows.cli", *args, *extra],
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip

    off = tune("32,48,16", "--no-warm-start")
    assert off.returncode == 0, off.stderr
    assert "warm start" not in off.stderr and not training_path(db).exists()
    first = tune("32,48,16")
    assert first.returncode == 0, first.stderr
    assert "warm start: no programs measured on this CPU yet" in first.stderr
    # the records of the run without it are resumed into the model: 4 + 4
    assert "8 programs of 1 workload measured on this CPU kept in" in first.stderr
    second = tune("16,32,48")
    assert second.returncode == 0, second.stderr
    assert "warm start: 8 programs of 1 workload measured on this CPU" in second.stderr
    assert "too few to train on" in second.stderr  # fewer than the model's warm-up
    assert "12 programs of 2 workloads measured on this CPU kept in" in second.stderr
