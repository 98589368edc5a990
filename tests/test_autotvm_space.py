"""Config spaces: every knob policy's size and index <-> config round trip, fallbacks,
features, and the errors a template author sees (pure Python, no LLVM)."""

import itertools
import math

import numpy as np
import pytest

from compiler.autotvm import ConfigSpace, SpaceError


def brute_factorizations(extent, parts):
    divisors = [d for d in range(1, extent + 1) if extent % d == 0]
    return {p for p in itertools.product(divisors, repeat=parts) if math.prod(p) == extent}


def assert_round_trip(space):
    """Every index decodes to a config whose digits encode it back, mixed-radix with
    the first knob fastest; the entities differ pairwise."""
    dims = space.dims
    seen = set()
    for index in range(len(space)):
        entity = space.get(index)
        assert space.index_of(entity.point) == index
        expected, rest = [], index
        for d in dims:
            rest, digit = divmod(rest, d)
            expected.append(digit)
        assert list(entity.point) == expected
        seen.add(repr(entity.to_json()))
    assert len(seen) == len(space)


@pytest.mark.parametrize("extent, parts", [(12, 2), (12, 3), (16, 3), (7, 2), (1, 3)])
def test_split_factors_are_every_exact_factorization(extent, parts):
    cfg = ConfigSpace()
    cfg.define_split("t", extent, num_outputs=parts)
    sizes = {e.size for e in cfg.knobs["t"].entities}
    assert sizes == brute_factorizations(extent, parts)
    assert len(cfg) == len(sizes)
    assert_round_trip(cfg)


def test_split_power2_rounds_the_outer_extent_up():
    cfg = ConfigSpace()
    cfg.define_split("t", 10, num_outputs=3, policy="power2")
    sizes = {e.size for e in cfg.knobs["t"].entities}
    inner = {s[1:] for s in sizes}
    assert inner == {(a, b) for a in (1, 2, 4, 8) for b in (1, 2, 4, 8) if a * b <= 10}
    assert all(s[0] == math.ceil(10 / (s[1] * s[2])) for s in sizes)
    assert_round_trip(cfg)


def test_split_verbose_is_factors_and_power2():
    def sizes(policy):
        cfg = ConfigSpace()
        cfg.define_split("t", 24, num_outputs=2, policy=policy)
        return {e.size for e in cfg.knobs["t"].entities}

    assert sizes("verbose") == sizes("factors") | sizes("power2")
    assert (3, 8) in sizes("verbose") and (2, 16) in sizes("verbose")


def test_split_candidates_infer_the_outer_size():
    cfg = ConfigSpace()
    cfg.define_split("t", 64, num_outputs=3, policy="candidate", candidate=[[-1, 4, 4], [2, 4, 8]])
    assert [e.size for e in cfg.knobs["t"].entities] == [(4, 4, 4), (2, 4, 8)]
    with pytest.raises(SpaceError, match="does not cover"):
        ConfigSpace().define_split("t", 64, policy="candidate", candidate=[[3, 4]])


def test_split_max_factor_and_filter():
    cfg = ConfigSpace()
    cfg.define_split("t", 64, num_outputs=3, max_factor=8, filter=lambda e: e.size[1] >= 2)
    sizes = [e.size for e in cfg.knobs["t"].entities]
    assert sizes and all(max(s[1:]) <= 8 and s[1] >= 2 and math.prod(s) == 64 for s in sizes)
    with pytest.raises(SpaceError, match="no split"):
        ConfigSpace().define_split("t", 64, filter=lambda e: False)


def test_reorder_policies():
    axes = ["a", "b", "c", "d"]

    def perms(policy, **kw):
        cfg = ConfigSpace()
        cfg.define_reorder("o", axes, policy, **kw)
        assert_round_trip(cfg)
        return [e.apply(axes) for e in cfg.knobs["o"].entities]

    assert perms("identity") == [axes]
    assert len(perms("all")) == 24
    assert sorted(map(tuple, perms("interval_all", interval=(1, 3)))) == [
        ("a", "b", "c", "d"),
        ("a", "c", "b", "d"),
    ]
    cands = [["d", "c", "b", "a"], ["a", "b", "c", "d"]]
    assert perms("candidate", candidate=cands) == cands
    inter = perms("interleave", spatial=[["a"], ["b"]], reduce=[["c", "d"]])
    # the two spatial groups keep their order, the reduce group stays together
    assert sorted(map(tuple, inter)) == sorted(
        [("a", "b", "c", "d"), ("a", "c", "d", "b"), ("c", "d", "a", "b")]
    )


def test_reorder_bad_input_is_a_space_error():
    with pytest.raises(SpaceError, match="every axis"):
        ConfigSpace().define_reorder("o", ["a", "b"], "candidate", candidate=[["a"]])
    with pytest.raises(SpaceError, match="unknown reorder policy"):
        ConfigSpace().define_reorder("o", ["a"], "shuffle")


@pytest.mark.parametrize(
    "policy, n_axes, size", [("try_unroll", 3, 8), ("try_vec", 3, 2), ("try_unroll_vec", 3, 12)]
)
def test_annotate_policies(policy, n_axes, size):
    cfg = ConfigSpace()
    cfg.define_annotate("ann", list(range(n_axes)), policy)
    entities = cfg.knobs["ann"].entities
    assert len(cfg) == size
    assert all(len(e.anns) == n_axes for e in entities)
    assert all("vec" not in e.anns[:-1] for e in entities)  # only the last axis vectorizes
    assert_round_trip(cfg)


def test_a_product_space_round_trips_and_the_fallback_is_the_nearest_choice():
    cfg = ConfigSpace()
    tile = cfg.define_split("tile", 48, num_outputs=3, max_factor=16, fallback=[-1, 4, 8])
    cfg.define_reorder("order", ["x", "y", "z"], "all", fallback=["z", "x", "y"])
    cfg.define_annotate("ann", ["i", "j"], "try_unroll_vec", fallback=["unroll", "vec"])
    unroll = cfg.define_knob("unroll", [0, 16, 64], fallback=16)
    assert tile.size == (2, 3, 8)  # 4 x 8 does not divide 48; 3 is the nearest to 4 in log2
    assert unroll.val == 16 and cfg["unroll"].val == 16
    assert len(cfg) == math.prod(cfg.dims) == len(cfg.knobs["tile"]) * 6 * 6 * 3
    assert_round_trip(cfg)
    fb = cfg.fallback()
    assert fb.is_fallback and cfg.get(fb.index).point == fb.point
    assert fb["order"].apply(["x", "y", "z"]) == ["z", "x", "y"]
    assert fb["ann"].anns == ("unroll", "vec")


def test_entity_define_calls_return_the_configs_choice():
    cfg = ConfigSpace()
    cfg.define_split("tile", 16, num_outputs=2)
    cfg.define_knob("k", ["a", "b"])
    entity = cfg.get(len(cfg) - 1)
    assert entity.define_split("tile", 16, num_outputs=2).size == (1, 16)
    assert entity.define_knob("k", ["a", "b"]).val == "b"
    with pytest.raises(SpaceError, match="not in its space"):
        entity.define_knob("other", [1, 2])
    with pytest.raises(SpaceError, match="defined twice"):
        cfg.define_knob("k", [1])


def test_knob_features_are_numbers_per_knob():
    cfg = ConfigSpace()
    cfg.define_split("tile", 64, num_outputs=3)
    cfg.define_knob("unroll", [0, 16, 64])
    cfg.define_knob("mode", ["x", "y"])
    index = cfg.index_of([cfg.knobs["tile"].nearest([-1, 4, 8]), 2, 1])
    feats = cfg.get(index).features()
    # log2 of (2, 4, 8), log2 of the inner tile 4*8, then the unroll value, the mode's position
    np.testing.assert_allclose(feats, [1, 2, 3, 5, 64, 1])
    many = cfg.features(range(len(cfg)))
    assert many.shape == (len(cfg), 6) and np.isfinite(many).all()


def test_random_indices_cover_the_space():
    cfg = ConfigSpace()
    cfg.define_knob("a", list(range(5)))
    cfg.define_knob("b", list(range(7)))
    rng = np.random.default_rng(0)
    got = {cfg.random_index(rng) for _ in range(2000)}
    assert got == set(range(35))
    with pytest.raises(IndexError):
        cfg.get(35)
