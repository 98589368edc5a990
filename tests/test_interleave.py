"""Side-by-side timing: every contender timed in every round, the first place rotating."""

from __future__ import annotations

import pytest

from compiler.measure import interleave
from compiler.measure.interleave import interleaved_all, median_ratio


@pytest.fixture(autouse=True)
def no_settle(monkeypatch):
    monkeypatch.setattr(interleave, "SETTLE_S", 0.0)


def test_every_contender_is_timed_every_round_and_the_first_place_rotates():
    calls: list[str] = []
    contenders = [lambda name=name: calls.append(name) for name in "abc"]
    times = interleaved_all(contenders, rounds=4, repeat=2)
    assert [len(t) for t in times] == [4, 4, 4]
    assert calls[:3] == ["a", "b", "c"]  # one warm-up call each
    timed = calls[3::2]  # each contender's two calls in a round are adjacent
    assert timed == list("abcbcacababc")


def test_a_slower_contender_gets_a_ratio_below_one():
    import time

    fast, slow = (lambda: time.sleep(0.001)), (lambda: time.sleep(0.004))
    slow_s, fast_s = interleaved_all([slow, fast], rounds=3, repeat=1)
    assert median_ratio(slow_s, fast_s) < 0.8
