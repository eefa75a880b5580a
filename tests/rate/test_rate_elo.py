"""Elo and Bradley-Terry: pure functions, checked against known answers."""

from __future__ import annotations

import math
import random

import pytest

from condtune.rate.elo import (
    Comparison,
    bradley_terry,
    elo,
    elo_averaged,
    expected_score,
    rank,
    records,
    to_elo_scale,
)


def test_expected_score():
    assert expected_score(1000, 1000) == 0.5
    assert expected_score(1400, 1000) == pytest.approx(10 / 11)


def test_elo_single_game_and_zero_sum():
    r = elo([Comparison("a", "b", 1.0)], k=16)
    assert r == {"a": 1008.0, "b": 992.0}
    games = [Comparison("a", "b", 1.0), Comparison("b", "c", 0.5), Comparison("c", "a", 0.0), Comparison("b", "a", 1.0)]
    r = elo(games)
    assert sum(r.values()) == pytest.approx(3000.0)


def test_records_count_ties_for_both():
    rec = records([Comparison("a", "b", 1.0), Comparison("a", "b", 0.5), Comparison("b", "c", 0.0)])
    assert rec["a"] == (1, 0, 1) and rec["b"] == (0, 2, 1) and rec["c"] == (1, 0, 0)


def test_bt_symmetric_results_give_equal_strengths():
    theta = bradley_terry([Comparison("a", "b", 1.0), Comparison("b", "a", 1.0)])
    assert theta["a"] == pytest.approx(theta["b"]) == pytest.approx(0.0)
    theta = bradley_terry([Comparison("a", "b", 0.5)] * 5)
    assert theta["a"] == pytest.approx(theta["b"])


def test_bt_chain_is_ordered_and_finite():
    theta = bradley_terry([Comparison("a", "b", 1.0), Comparison("b", "c", 1.0)])
    assert theta["a"] > theta["b"] > theta["c"]
    assert all(math.isfinite(t) for t in theta.values())
    assert sum(theta.values()) == pytest.approx(0.0, abs=1e-9)


def test_bt_recovers_true_strengths():
    true = {"p0": -1.5, "p1": -0.5, "p2": 0.0, "p3": 0.7, "p4": 1.3}
    rng = random.Random(0)
    comps = []
    for _ in range(3000):
        a, b = rng.sample(sorted(true), 2)
        p = 1 / (1 + math.exp(true[b] - true[a]))
        comps.append(Comparison(a, b, 1.0 if rng.random() < p else 0.0))
    theta = bradley_terry(comps, prior=0.1)
    mean_true = sum(true.values()) / len(true)
    for k in true:
        assert theta[k] == pytest.approx(true[k] - mean_true, abs=0.15)
    order = [row.id for row in rank(comps)]
    assert order == ["p4", "p3", "p2", "p1", "p0"]
    assert [row.id for row in rank(comps, method="elo")] == order


def test_elo_scale_and_rank_rows():
    assert to_elo_scale({"a": math.log(10.0), "b": 0.0}) == {"a": pytest.approx(1400.0), "b": 1000.0}
    rows = rank([Comparison("x", "y", 1.0)] * 3 + [Comparison("x", "y", 0.5)])
    assert rows[0].id == "x" and rows[0].wins == 3 and rows[0].ties == 1 and rows[1].losses == 3
    assert rows[0].rating > 1000 > rows[1].rating


def test_elo_averaged_is_order_free():
    comps = [Comparison("a", "b", 1.0)] * 5 + [Comparison("b", "a", 1.0)] * 5
    r = elo_averaged(comps, rounds=200, seed=1)
    assert abs(r["a"] - r["b"]) < 10


@pytest.mark.parametrize("bad", [Comparison("a", "a", 1.0), Comparison("a", "b", 0.3)])
def test_bad_comparisons_raise(bad):
    with pytest.raises(ValueError):
        bradley_terry([bad])
    with pytest.raises(ValueError):
        elo([bad])
