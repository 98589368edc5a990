"""Per-store features: layout, determinism, hand-checked values, schedule sensitivity."""

import math

import numpy as np
import pytest

from compiler import ops, te
from compiler.cost_model import FEATURE_NAMES, N_FEATURES, access, clear_cache, extract_features
from compiler.cost_model.ops_count import OpCounter, unpack
from compiler.cost_model.store_features import program_features
from compiler.lower.loop_ir import Allocate, Buffer, For, IfThenElse, Load, Seq, Store
from compiler.lower.lower import lower
from compiler.schedule.default import default_schedule
from compiler.schedule.random_steps import random_state
from compiler.schedule.state import State
from compiler.schedule.steps import Annotate, Annotation, Split
from compiler.te.dag import ComputeDAG
from compiler.te.expr import Var


def slog(x: float) -> float:
    return math.copysign(math.log2(abs(x) + 1), x)


def named(row: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, row.tolist()))


def named_counts(packed: int) -> dict[str, int]:
    """The nonzero op counts of a packed count, by feature name."""
    return {n: c for n, c in zip(FEATURE_NAMES, unpack(packed)) if c}


def copy_dag(transpose: bool = False) -> ComputeDAG:
    a = te.placeholder((4, 4), name="A")
    b = te.compute((4, 4), lambda i, j: a[j, i] if transpose else a[i, j], name="B")
    return ComputeDAG([b])


def matmul_dag(n: int = 64) -> ComputeDAG:
    a, b = te.placeholder((n, n), name="A"), te.placeholder((n, n), name="B")
    return ComputeDAG([ops.matmul(a, b)])


def conv_dag() -> ComputeDAG:
    x, w = te.placeholder((1, 16, 14, 14), name="X"), te.placeholder((16, 16, 3, 3), name="W")
    return ComputeDAG([ops.relu(ops.conv2d_nchw(x, w, stride=1, padding=1))])


def test_layout_matches_ansor_length():
    assert N_FEATURES == len(FEATURE_NAMES) == 164
    assert len(set(FEATURE_NAMES)) == N_FEATURES
    assert FEATURE_NAMES[0] == "float_mad" and FEATURE_NAMES[-1] == "auto_unroll_max_step"


@pytest.mark.parametrize("make", [matmul_dag, conv_dag])
def test_features_are_deterministic_and_shaped(make):
    dag = make()
    rng = np.random.default_rng(3)
    states = [default_schedule(dag)] + [random_state(State.initial(dag), rng, 6) for _ in range(8)]
    first = extract_features(states)
    clear_cache()
    again = extract_features(State.replay(make(), s.steps) for s in states)  # fresh DAG too
    for f, g in zip(first, again):
        assert f.dtype == np.float32 and f.ndim == 2 and f.shape[1] == N_FEATURES
        assert len(f) >= 1 and np.isfinite(f).all()
        np.testing.assert_array_equal(f, g)


def test_copy_4x4_hand_checked():
    """The row's definition, on the simplified program (as Ansor reads it)."""
    row = named(program_features(lower(State.initial(copy_dag())))[0])
    assert row["outer_prod"] == pytest.approx(slog(16))
    assert row["num_loops"] == pytest.approx(slog(2))
    for b, acc in (("B0", "write"), ("B1", "read")):  # equal lines and bytes: statement order
        assert row[f"{b}.acc_type.{acc}"] == 1
        assert row[f"{b}.bytes"] == pytest.approx(slog(64))  # 16 floats
        assert row[f"{b}.unique_bytes"] == pytest.approx(slog(64))
        assert row[f"{b}.lines"] == pytest.approx(slog(1))  # stride 1: 16 x 4/64 lines
        assert row[f"{b}.unique_lines"] == pytest.approx(slog(1))  # one 64-byte line
        assert row[f"{b}.stride"] == pytest.approx(slog(1))
        assert row[f"{b}.reuse_type.no_reuse"] == 1
    assert row["B2.bytes"] == 0  # padding
    assert row["float_addsub"] == 0 and row["float_mad"] == 0
    assert row["int_mad"] == pytest.approx(slog(16 * 2))  # i*4 + j in the load and the store
    assert row["vec_type.none"] == 1 and row["parallel_type.none"] == 1


def test_the_model_s_rows_come_from_the_unsimplified_program():
    """features.py's documented deviation: the same definition, on the program
    before its last simplification (index arithmetic written out in full)."""
    state = State.initial(copy_dag())
    clear_cache()
    (got,) = extract_features([state])
    np.testing.assert_array_equal(got, program_features(lower(state, simplify=False)))
    simplified = named(program_features(lower(state))[0])
    assert named(got[0])["int_mad"] > simplified["int_mad"]  # 0 + i*4 + j*1 in full
    assert named(got[0])["B0.bytes"] == simplified["B0.bytes"]  # the accesses agree


def test_transposed_copy_strides_and_lines():
    row = named(extract_features([State.initial(copy_dag(transpose=True))])[0][0])
    assert row["B0.acc_type.read"] == 1  # most cache lines first
    assert row["B0.stride"] == pytest.approx(slog(4))  # A[j, i] along j: 4 floats apart
    assert row["B0.lines"] == pytest.approx(slog(16 * 16 / 64))  # 16 B of a line per step
    assert row["B0.unique_lines"] == pytest.approx(slog(1))
    assert row["B1.acc_type.write"] == 1 and row["B1.stride"] == pytest.approx(slog(1))
    assert row["B1.lines"] == pytest.approx(slog(1))


def vectorized_matmul(vectorize: bool) -> State:
    s = State.initial(matmul_dag())
    s = s.apply(Split(2, 1, (16,)))  # i, j.0, j.1, k
    s = s.apply(Annotate(2, 2, Annotation.VECTORIZE if vectorize else Annotation.NONE))
    return s


def test_vectorized_and_scalar_schedules_differ():
    vec, scalar = extract_features([vectorized_matmul(True), vectorized_matmul(False)])
    assert vec.shape == scalar.shape
    diff = {n for n, a, b in zip(FEATURE_NAMES, vec[-1], scalar[-1]) if a != b}
    assert {"vec_num", "vec_len", "vec_type.none", "vec_type.inner_spatial"} <= diff
    v, s = named(vec[-1]), named(scalar[-1])
    assert v["vec_len"] == pytest.approx(slog(16)) and s["vec_len"] == 0


def test_default_matmul_has_reduction_rows():
    func = lower(default_schedule(matmul_dag()))
    rows = program_features(func)
    update = max((named(r) for r in rows), key=lambda r: r["float_mad"])
    assert update["float_mad"] == pytest.approx(slog(64**3))  # one mad a multiply-add
    assert update["B0.acc_type.readwrite"] == 1  # the register tile, read and written
    assert update["B0.reuse_type.loop_multiple_read"] == 1  # reused across k
    assert update["parallel_type.outer_spatial"] == 1
    assert update["vec_type.inner_spatial"] == 1


def test_a_shared_subtree_counts_each_time_it_occurs():
    """The op counter counts a subtree once per program, by object: a subtree two
    loads share counts as two copies of it would."""
    buf, x = Buffer("A", (64,)), Var("x")
    index = x * 4 + 1  # one int multiply-add
    shared = Load(buf, index) + Load(buf, index)
    copies = Load(buf, x * 4 + 1) + Load(buf, x * 4 + 1)
    counter = OpCounter()
    got, want = counter.count(shared), OpCounter().count(copies)
    assert unpack(got[0]) == unpack(want[0])
    assert named_counts(got[0]) == {"float_addsub": 1, "int_mad": 2}
    assert got[1] and got[2] == want[2] and len(got[2]) == 2  # a float; two loads, in order
    assert counter.count(shared) == got  # the second time from the memo


def stores_with_loops(s, loops=()):
    """Each Store of a statement tree with the (var, extent) of the loops around it."""
    match s:
        case For(var, extent, _, body):
            yield from stores_with_loops(body, loops + ((var, extent),))
        case Allocate(_, body):
            yield from stores_with_loops(body, loops)
        case Seq(stmts):
            for x in stmts:
                yield from stores_with_loops(x, loops)
        case IfThenElse(_, then_case, else_case):
            for x in (then_case, else_case):
                if x is not None:
                    yield from stores_with_loops(x, loops)
        case Store():
            yield s, loops


def test_touched_levels_is_touched_at_every_level():
    func = lower(default_schedule(conv_dag()), simplify=False)
    checked = 0
    for store, loops in stores_with_loops(func.body):
        terms, _ = access.LoopScope(loops).terms(store.index)
        size = store.buffer.size
        want = [access.touched(terms, level, size) for level in range(len(loops))]
        assert access.touched_levels(terms, len(loops), size) == want
        checked += len(set(want)) > 1
    assert checked  # some store's region grows with the loops


def test_state_that_does_not_lower_gets_no_rows():
    s = State.initial(matmul_dag()).apply(Split(2, 0, (None,)))  # a sketch: unfilled factor
    (f,) = extract_features([s])
    assert f.shape == (0, N_FEATURES)


def _sampled_states(n: int) -> list[State]:
    from compiler.search.annotate import AnnotateConfig, sample_population
    from compiler.search.sketch import generate_sketches

    dag = conv_dag()
    sketches = generate_sketches(dag, cores=2)
    return sample_population(sketches, n, np.random.default_rng(3), AnnotateConfig(cores=2))


def test_features_on_the_pool_equal_the_caller_s(monkeypatch):
    """A batch computed by spawned workers and the caller gives the rows the caller
    alone gives, in the same order; while the workers are held (a kernel is being
    timed), and when a worker is dead, the caller does it all."""
    from compiler.cost_model import feature_pool

    states = _sampled_states(2 * feature_pool.MIN_PARALLEL)
    monkeypatch.setenv("SKETCHTUNE_FEATURE_WORKERS", "0")
    feature_pool.shutdown()
    clear_cache()
    alone = extract_features(states)

    monkeypatch.setenv("SKETCHTUNE_FEATURE_WORKERS", "1")
    clear_cache()
    before = feature_pool.stats["pool_chunks"]
    try:
        for w in feature_pool._get_workers():
            w.wait_ready()  # a worker still starting is skipped: wait, so it is used
        shared = extract_features(states)
        assert feature_pool.stats["pool_chunks"] > before  # the worker did some of it
        assert len(shared) == len(alone)
        assert all(np.array_equal(a, b) for a, b in zip(alone, shared))

        clear_cache()
        before = feature_pool.stats["pool_chunks"]
        with feature_pool.workers_held():
            held = extract_features(states)
        assert feature_pool.stats["pool_chunks"] == before
        assert all(np.array_equal(a, b) for a, b in zip(alone, held))

        for w in feature_pool._get_workers():
            w._proc.kill()  # type: ignore[attr-defined]
        clear_cache()
        again = extract_features(states)
        assert all(np.array_equal(a, b) for a, b in zip(alone, again))
    finally:
        feature_pool.shutdown()
        clear_cache()
