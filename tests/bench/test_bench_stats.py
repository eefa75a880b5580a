"""Cluster-bootstrap confidence intervals (condtune.bench.stats): values equal the plain metrics,
widths match the cluster standard error, replicates match a brute-force resampling of the samples,
seeding, errors, and pooling over seeds. Pure numpy/scipy, seeded, fast."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from condtune.bench import stats as S
from condtune.metrics import distinct_n

WORDS = "the a good bad film plot actor scene long short very quite".split()


def _prompts(p: int, m: int, seeds: int = 1) -> np.ndarray:
    """Prompt-major cluster ids: m samples per prompt, repeated for each seed."""
    return np.tile(np.repeat(np.arange(p), m), seeds)


def _texts(rng: np.random.Generator, k: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, rng.integers(0, 9))) for _ in range(k)]


def _brute(stat, clusters: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval from explicit replicates: every drawn cluster's sample indices, with multiplicity."""
    ids, w = S.replicate_weights(clusters, n_boot, seed)
    members = [np.flatnonzero(clusters == c) for c in ids]
    reps = []
    for row in w:
        idx = np.concatenate([np.tile(members[c], k) for c, k in enumerate(row) if k])
        reps.append(stat(idx))
    reps = np.array(reps, float)
    reps = reps[np.isfinite(reps)]
    a = 100 * (1 - level) / 2
    return tuple(np.percentile(reps, [a, 100 - a]))


def test_replicate_weights_shape_and_counts():
    clusters = np.array([5, 5, 2, 9, 2, 9, 9])
    ids, w = S.replicate_weights(clusters, n_boot=300, seed=1)
    assert ids.tolist() == [2, 5, 9]
    assert w.shape == (300, 3) and np.issubdtype(w.dtype, np.integer)
    assert (w.sum(axis=1) == 3).all() and (w >= 0).all()
    assert abs(w.mean() - 1.0) < 0.1  # each cluster drawn once on average


def test_mean_ci_value_and_width_match_cluster_se():
    rng = np.random.default_rng(0)
    p, m = 200, 10
    clusters = _prompts(p, m)
    values = np.repeat(rng.normal(0, 1.0, p), m) + rng.normal(0, 1.0, p * m)  # between- and within-prompt sd 1
    iv = S.mean_ci(values, clusters)
    assert iv.value == pytest.approx(float(np.mean(values)), abs=1e-12)
    assert iv.lo <= iv.value <= iv.hi
    se_data = np.std(values.reshape(p, m).mean(axis=1), ddof=1) / math.sqrt(p)  # cluster SE from the data
    se_true = math.sqrt((1.0 + 1.0 / m) / p)  # from the generating variances
    for se in (se_data, se_true):
        assert (iv.hi - iv.lo) == pytest.approx(2 * 1.959964 * se, rel=0.3)
    assert iv.as_list() == [iv.lo, iv.hi]


def test_mean_ci_matches_brute_force_replicates():
    rng = np.random.default_rng(3)
    clusters = rng.integers(0, 70, 400)  # unequal cluster sizes
    values = rng.normal(size=400)
    iv = S.mean_ci(values, clusters, n_boot=60, seed=4)
    assert [iv.lo, iv.hi] == pytest.approx(_brute(lambda i: values[i].mean(), clusters, 60, 4), abs=1e-12)


def test_clustering_widens_interval_for_correlated_samples():
    rng = np.random.default_rng(1)
    p, m = 64, 10
    values = np.repeat(rng.normal(size=p), m)  # every sample of a prompt identical
    clustered = S.mean_ci(values, _prompts(p, m), seed=2)
    independent = S.mean_ci(values, np.arange(p * m), seed=2)
    assert clustered.value == pytest.approx(independent.value)
    w_c, w_i = clustered.hi - clustered.lo, independent.hi - independent.lo
    assert w_c > 2 * w_i  # about sqrt(m) = 3.2 times wider
    assert w_c / w_i == pytest.approx(math.sqrt(m), rel=0.3)


def test_spearman_ci_value_matches_scipy_and_contains_zero_when_independent():
    rng = np.random.default_rng(2)
    p, m = 64, 20
    clusters = _prompts(p, m)
    x = rng.integers(0, 5, p * m).astype(float)  # heavy ties
    y = np.round(rng.normal(size=p * m), 1)
    iv = S.spearman_ci(x, y, clusters)
    assert iv.value == pytest.approx(float(sps.spearmanr(x, y)[0]), abs=1e-12)
    assert iv.lo <= iv.value <= iv.hi
    assert iv.lo < 0 < iv.hi


def test_spearman_ci_matches_brute_force_with_ties():
    rng = np.random.default_rng(5)
    clusters = _prompts(20, 6)
    x = rng.integers(0, 4, 120).astype(float)
    y = x + rng.integers(0, 3, 120)
    iv = S.spearman_ci(x, y, clusters, n_boot=50, seed=7)
    lo, hi = _brute(lambda i: sps.spearmanr(x[i], y[i])[0], clusters, 50, 7)
    assert [iv.lo, iv.hi] == pytest.approx([lo, hi], abs=1e-10)
    assert iv.lo > 0.3


def test_spearman_ci_nan_handling():
    rng = np.random.default_rng(6)
    clusters = _prompts(64, 5)
    y = rng.normal(size=320)
    assert all(
        math.isnan(v)
        for v in (*S.spearman_ci(np.ones(320), y, clusters).as_list(), S.spearman_ci(np.ones(320), y, clusters).value)
    )
    x = np.zeros(320)
    x[:5] = np.arange(5)  # x varies in prompt 0 only: replicates without it are undefined and dropped
    iv = S.spearman_ci(x, y, clusters, n_boot=200)
    assert np.isfinite([iv.value, iv.lo, iv.hi]).all() and iv.lo <= iv.hi


def test_mae_ci():
    rng = np.random.default_rng(8)
    clusters = _prompts(64, 4)
    req = np.tile([0.0, 1.0, 2.0, 3.0], 64)
    ach = req + rng.normal(0, 0.5, 256)
    iv = S.mae_ci(req, ach, clusters)
    assert iv.value == pytest.approx(float(np.mean(np.abs(req - ach))))
    assert iv.lo <= iv.value <= iv.hi


def test_distinct_n_ci_is_the_mean_over_prompts_of_each_prompts_distinct_n():
    rng = np.random.default_rng(9)
    clusters = _prompts(30, 6)
    texts = _texts(rng, 180)
    for n in (1, 2, 3):
        iv = S.distinct_n_ci(texts, clusters, n=n, n_boot=200, seed=n)
        per = [distinct_n([t for t, c in zip(texts, clusters) if c == k], n) for k in np.unique(clusters)]
        assert iv.value == pytest.approx(float(np.mean(per)))
        assert iv.lo <= iv.value <= iv.hi


def test_distinct_n_ci_without_ngrams():
    iv = S.distinct_n_ci(["a", "b", ""], np.array([0, 1, 2]), n=2, n_boot=20)
    assert (iv.value, iv.lo, iv.hi) == (0.0, 0.0, 0.0)


def test_same_seed_same_interval_different_seed_different():
    rng = np.random.default_rng(10)
    clusters = _prompts(64, 5)
    x, y = rng.normal(size=320), rng.normal(size=320)
    texts = _texts(rng, 320)
    for f in (
        lambda s: S.mean_ci(x, clusters, seed=s),
        lambda s: S.spearman_ci(x, y, clusters, seed=s),
        lambda s: S.mae_ci(x, y, clusters, seed=s),
        lambda s: S.distinct_n_ci(texts, clusters, seed=s),
    ):
        assert f(0) == f(0)
        assert f(0).as_list() != f(1).as_list() and f(0).value == f(1).value
    (ids_a, w_a), (ids_b, w_b) = S.replicate_weights(clusters, 100, 3), S.replicate_weights(clusters, 100, 3)
    assert (ids_a == ids_b).all() and (w_a == w_b).all()


def test_errors_on_empty_and_mismatched_input():
    with pytest.raises(ValueError):
        S.mean_ci(np.array([]), np.array([]))
    with pytest.raises(ValueError):
        S.replicate_weights(np.array([]))
    with pytest.raises(ValueError):
        S.distinct_n_ci([], np.array([]))
    with pytest.raises(ValueError, match="values"):
        S.mean_ci(np.ones(3), np.arange(4))
    with pytest.raises(ValueError, match="y"):
        S.spearman_ci(np.ones(4), np.ones(3), np.arange(4))
    with pytest.raises(ValueError, match="achieved"):
        S.mae_ci(np.ones(4), np.ones(5), np.arange(4))
    with pytest.raises(ValueError, match="texts"):
        S.distinct_n_ci(["a b"] * 3, np.arange(4))
    with pytest.raises(ValueError):
        S.monotone_share([])


def test_pooled_over_seeds_resamples_prompts_not_prompt_seed_pairs():
    rng = np.random.default_rng(11)
    p, m, seeds = 64, 5, 2
    clusters = _prompts(p, m, seeds)
    ids, w = S.replicate_weights(clusters, n_boot=100)
    assert len(ids) == p and w.shape == (100, p) and (w.sum(axis=1) == p).all()
    values = rng.normal(size=p * m * seeds)
    iv = S.mean_ci(values, clusters, n_boot=80, seed=3)
    assert iv.value == pytest.approx(float(values.mean()))
    assert [iv.lo, iv.hi] == pytest.approx(_brute(lambda i: values[i].mean(), clusters, 80, 3), abs=1e-12)


def test_monotone_share_and_ci_fields():
    assert S.monotone_share([[0.1, 0.2, 0.3], [0.1, 0.1, 0.3], [0.3, 0.2, 0.4], [1, 2, 5]]) == (2, 4)
    iv = S.Interval(0.5, 0.4, 0.6)
    assert S.ci_fields("gold", iv) == {"gold": 0.5, "gold_ci": [0.4, 0.6]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        iv.value = 1.0  # frozen


def test_upper_hull_and_line_envelope():
    pts = [(0.0, 0.0), (1.0, 1.0), (2.0, 1.2), (3.0, 2.4), (1.5, 0.5), (4.0, 2.5)]
    hull = S.upper_hull(pts)
    assert hull == [(0.0, 0.0), (1.0, 1.0), (3.0, 2.4), (4.0, 2.5)]  # (2, 1.2) lies under the chord 1 -> 3
    slopes = np.diff([y for _, y in hull]) / np.diff([x for x, _ in hull])
    assert np.all(np.diff(slopes) < 0)  # concave
    assert all(S.line_envelope([hull], x) >= y - 1e-12 for x, y in pts)  # every point on or under it
    assert S.line_envelope([hull], 2.0) == pytest.approx(1.7)
    assert S.upper_hull([(1.0, 1.0), (1.0, 1.0)]) == [(1.0, 1.0)]
    assert S.upper_hull([(0.0, 0.0), (1.0, 0.5), (1.0, 1.0), (2.0, 1.0)]) == [(0.0, 0.0), (1.0, 1.0), (2.0, 1.0)]
    # the line envelope: the highest line spanning x, none extrapolated
    a, b = [(0.0, 0.0), (2.0, 2.0)], [(3.0, 1.0), (1.0, 0.0)]
    assert S.line_envelope([a, b], 1.5) == pytest.approx(1.5)
    assert S.line_envelope([a, b], 2.5) == pytest.approx(0.75)
    assert S.line_envelope([a, b], 3.5) is None and S.line_envelope([], 1.0) is None


def test_replicate_means_share_the_replicates_of_mean_ci():
    rng = np.random.default_rng(4)
    clusters = _prompts(12, 3, seeds=2)
    values = rng.normal(size=len(clusters))
    ids, w = S.replicate_weights(clusters, n_boot=300, seed=5)
    reps = S.replicate_means(values, clusters, ids, w)
    assert reps.shape == (301,) and reps[0] == pytest.approx(values.mean())
    iv = S.mean_ci(values, clusters, n_boot=300, seed=5)
    assert np.percentile(reps[1:], [2.5, 97.5]) == pytest.approx([iv.lo, iv.hi])
    part = clusters < 6  # a point measured on half the prompts: replicates drawing none of them are NaN
    assert np.isnan(S.replicate_means(values[part], clusters[part], ids, w)).sum() <= 1
    with pytest.raises(ValueError, match="not in ids"):
        S.replicate_means([1.0], [99], ids, w)


def test_frontier_at_is_the_best_reward_at_no_more_kl():
    pts = [(0.0, 0.0), (2.0, 2.0), (4.0, 2.5), (6.0, -1.0), (1.0, -3.0)]  # a low point far right, one under
    assert S.frontier_at(pts, 1.0) == pytest.approx(1.0)
    assert S.frontier_at(pts, 3.0) == pytest.approx(2.25)
    assert S.frontier_at(pts, 5.0) == S.frontier_at(pts, 9.0) == pytest.approx(2.5)  # not the hull's fall
    assert S.frontier_at(pts, -0.5) is None and S.frontier_at([], 1.0) is None


def test_margins_over_frontier_rebuild_the_hull_in_every_replicate():
    const = lambda v: np.full(51, float(v))  # noqa: E731 - a point without noise: every replicate the same
    others = [(const(0), const(0)), (const(2), const(2)), (const(4), const(2.5))]
    points = [(const(1), const(1.5)), (const(3), const(1.0)), (const(5), const(3)), (const(-1), const(0))]
    above, under, beyond, before = S.margins_over_frontier(points, others)
    assert (above.value, above.lo, above.hi) == pytest.approx((0.5, 0.5, 0.5))  # hull at 1 is 1.0
    assert under.value == pytest.approx(1.0 - 2.25)
    assert beyond.value == pytest.approx(3 - 2.5)  # past the last point: the best at less KL
    assert np.isnan(before.value) and np.isnan(before.lo)  # below the least KL: nothing to compare
    assert under.negated() == S.Interval(-under.value, -under.hi, -under.lo)
    # noise in the others moves the hull in each replicate: the interval widens around the value
    rng = np.random.default_rng(0)
    noisy = [(x, y + np.r_[0.0, rng.normal(0, 0.1, 50)]) for x, y in others]
    (iv,) = S.margins_over_frontier([(const(1), const(1.5))], noisy)
    assert iv.value == pytest.approx(0.5) and iv.lo < 0.5 < iv.hi
