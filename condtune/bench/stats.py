"""Bootstrap confidence intervals for the benchmark's numbers, resampled by prompt (pure numpy/scipy).

Cluster bootstrap
-----------------
Samples of one prompt are correlated (same prompt, same difficulty), so resampling samples as if
independent understates the uncertainty. Every sample carries a ``cluster`` id, its prompt; the
samples of one prompt from different seeds share the id, so seeds are pooled. One replicate draws
the P distinct prompts P times with replacement, and each drawn prompt brings all of its samples,
once per draw. :func:`replicate_weights` turns ``(clusters, n_boot, seed)`` into the draw counts
W [n_boot, P]; every statistic uses it, so intervals of different metrics of one point (same
clusters and seed) come from the same replicates. A replicate's statistic is then computed on
weighted data, never by copying samples:

* means (and MAE): ``W @ per-cluster sums / W @ per-cluster counts``;
* Spearman: midranks of the replicate's multiset (a sample of weight w fills w consecutive rank
  positions, ties share their average rank, as ``scipy.stats.spearmanr``), then the weighted
  Pearson correlation of the ranks;
* distinct-n: per prompt (its samples over all seeds), then the mean over prompts, so a
  replicate is again a weighted mean. Corpus-level distinct-n is not bootstrapped: a replicate
  repeats prompts, which adds n-grams but no distinct ones, so its replicates are biased low.

The interval is the percentile interval of the replicates ((1 - level)/2 and (1 + level)/2);
``value`` is the statistic on the full data. Replicates where the statistic is undefined (NaN,
e.g. Spearman of a constant) are dropped; a NaN full-data value gives an all-NaN interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from condtune.metrics import distinct_n, spearman

_CHUNK = 2_000_000  # max elements of one [replicates, samples] block


@dataclass(frozen=True)
class Interval:
    value: float  # the statistic on the full data (not the bootstrap mean)
    lo: float
    hi: float

    def as_list(self) -> list[float]:
        return [self.lo, self.hi]

    def negated(self) -> Interval:
        return Interval(-self.value, -self.hi, -self.lo)


_NAN = Interval(float("nan"), float("nan"), float("nan"))


def ci_fields(name: str, iv: Interval) -> dict:
    """Results-schema fields: ``{name: value, name_ci: [lo, hi]}``."""
    return {name: iv.value, f"{name}_ci": iv.as_list()}


def _check(clusters, **arrays) -> np.ndarray:
    """Validate lengths (ValueError naming the arguments) and return the clusters as an array."""
    clusters = np.asarray(clusters)
    if clusters.ndim != 1 or clusters.size == 0:
        raise ValueError("clusters must be a non-empty 1-d array")
    for name, a in arrays.items():
        if len(a) != len(clusters):
            raise ValueError(f"length mismatch: {name} has {len(a)} items, clusters has {len(clusters)}")
    return clusters


def replicate_weights(clusters: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(unique cluster ids in sorted order, W [n_boot, n_clusters] int counts): row b counts how
    often each cluster was drawn in P draws with replacement from ``np.random.default_rng(seed)``."""
    ids = np.unique(_check(clusters))
    p = len(ids)
    draws = np.random.default_rng(seed).integers(0, p, size=(n_boot, p))
    flat = (draws + p * np.arange(n_boot)[:, None]).ravel()
    return ids, np.bincount(flat, minlength=n_boot * p).reshape(n_boot, p)


def _interval(value: float, reps: np.ndarray, level: float) -> Interval:
    if not np.isfinite(value):
        return _NAN
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return Interval(float(value), float("nan"), float("nan"))
    alpha = 100 * (1 - level) / 2
    lo, hi = np.percentile(reps, [alpha, 100 - alpha])
    return Interval(float(value), float(lo), float(hi))


def mean_ci(values, clusters, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean over samples, cluster-bootstrapped."""
    ids, w = replicate_weights(clusters, n_boot, seed)
    reps = replicate_means(values, clusters, ids, w)
    return _interval(float(reps[0]), reps[1:], level)


def mae_ci(requested, achieved, clusters, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean |requested - achieved|, cluster-bootstrapped."""
    requested, achieved = np.asarray(requested, float), np.asarray(achieved, float)
    _check(clusters, requested=requested, achieved=achieved)
    return mean_ci(np.abs(requested - achieved), clusters, n_boot=n_boot, level=level, seed=seed)


def _weighted_midranks(x: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Midranks [B, N] of each sample within the multiset where sample i appears sw[b, i] times."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    group = np.empty(len(x), dtype=np.intp)
    group[order] = np.cumsum(new) - 1
    gw = np.add.reduceat(sw[:, order], np.flatnonzero(new), axis=1)  # weight of each tie group
    mid = np.cumsum(gw, axis=1) - (gw - 1) / 2  # positions before the group + its average position
    return mid[:, group]


def _spearman_reps(x: np.ndarray, y: np.ndarray, sw: np.ndarray) -> np.ndarray:
    rx, ry = _weighted_midranks(x, sw), _weighted_midranks(y, sw)
    n = sw.sum(axis=1, keepdims=True)
    rx, ry = rx - (n + 1) / 2, ry - (n + 1) / 2  # the mean rank of n positions is (n + 1) / 2
    cov, vx, vy = ((sw * a * b).sum(axis=1) for a, b in ((rx, ry), (rx, rx), (ry, ry)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vx * vy)
    r[(vx <= 0) | (vy <= 0)] = np.nan
    return r


def spearman_ci(x, y, clusters, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Spearman correlation over samples (ties as ``scipy.stats.spearmanr``), cluster-bootstrapped."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    clusters = _check(clusters, x=x, y=y)
    value = spearman(x, y)
    if not np.isfinite(value):
        return _NAN
    ids, w = replicate_weights(clusters, n_boot, seed)
    sw = w[:, np.searchsorted(ids, clusters)].astype(float)  # per-sample weight in each replicate
    step = max(1, _CHUNK // len(x))
    reps = np.concatenate([_spearman_reps(x, y, sw[i : i + step]) for i in range(0, n_boot, step)])
    return _interval(value, reps, level)


def distinct_n_ci(
    texts: Sequence[str], clusters, *, n: int = 2, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Diversity within a prompt: the mean over prompts of :func:`condtune.metrics.distinct_n` of
    each prompt's samples (all seeds), cluster-bootstrapped. (Corpus-level distinct-n has no clean
    prompt bootstrap: a replicate repeats prompts, which adds n-grams but no distinct ones.)"""
    clusters = _check(clusters, texts=texts)
    ids = np.unique(clusters)
    groups: list[list[str]] = [[] for _ in ids]
    for t, k in zip(texts, np.searchsorted(ids, clusters)):
        groups[k].append(t)
    return mean_ci(np.array([distinct_n(g, n) for g in groups]), ids, n_boot=n_boot, level=level, seed=seed)


def monotone_share(means_by_seed: Sequence[Sequence[float]]) -> tuple[int, int]:
    """(how many seeds have strictly increasing means, how many seeds)."""
    if len(means_by_seed) == 0:
        raise ValueError("means_by_seed is empty")
    ups = sum(bool(np.all(np.diff(np.asarray(m, float)) > 0)) for m in means_by_seed)
    return ups, len(means_by_seed)


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The upper concave hull of (KL, reward) points, by increasing KL (Andrew's monotone chain).
    Every point under it is reached by mixing two of the policies prompt by prompt: the mixture's
    reward is the mixed rewards and its KL at most the mixed KLs (KL is convex)."""
    best: dict[float, float] = {}
    for x, y in points:  # of points at one KL only the best can be on the hull
        best[x] = max(y, best.get(x, -np.inf))
    hull: list[tuple[float, float]] = []
    for p in sorted(best.items()):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] on or under the chord
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def line_envelope(lines: Sequence[Sequence[tuple[float, float]]], x: float) -> float | None:
    """The highest of the polylines ``lines`` (points in any order) at ``x``, linearly interpolated and
    never extrapolated: None where no line spans ``x``."""
    vals = []
    for line in lines:
        pts = sorted(line)
        if pts and pts[0][0] <= x <= pts[-1][0]:
            vals.append(float(np.interp(x, [p[0] for p in pts], [p[1] for p in pts])))
    return max(vals) if vals else None


def replicate_means(values, clusters, ids: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[1 + n_boot]: the mean of ``values`` on the full data, then on each replicate of ``w``
    (:func:`replicate_weights`, whose cluster ids ``ids`` hold every cluster of ``clusters``).
    Points measured on the same prompts and read with the same ``w`` are resampled together, so a
    statistic of several points (a hull, a margin) keeps their correlation. NaN in a replicate
    that draws none of the point's clusters."""
    values = np.asarray(values, float)
    clusters = _check(clusters, values=values)
    code = np.searchsorted(ids, clusters)
    if (code >= len(ids)).any() or (ids[np.minimum(code, len(ids) - 1)] != clusters).any():
        raise ValueError("clusters holds ids that are not in ids")
    sums = np.bincount(code, weights=values, minlength=len(ids))
    counts = np.bincount(code, minlength=len(ids)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.r_[values.mean(), (w @ sums) / (w @ counts)]


def frontier_at(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """The most reward the policies at ``points`` (KL, reward) reach with KL at most ``x``, two of
    them mixed prompt by prompt: their :func:`upper_hull` up to its highest point, flat beyond it
    (a policy with less KL qualifies). None below the least KL of the points."""
    hull = upper_hull(points)
    if not hull or x < hull[0][0]:
        return None
    peak = int(np.argmax([y for _, y in hull]))
    return float(np.interp(min(x, hull[peak][0]), [p[0] for p in hull[: peak + 1]], [p[1] for p in hull[: peak + 1]]))


def margins_over_frontier(
    points: Sequence[tuple[np.ndarray, np.ndarray]],
    others: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    level: float = 0.95,
) -> list[Interval]:
    """How far each of ``points`` lies above the frontier of ``others`` at its own x
    (:func:`frontier_at`; negative: below). Every point is (x, y), two arrays of
    :func:`replicate_means` read with one ``w``; the margins are computed on the full data
    (index 0) and on every replicate, the frontier rebuilt each time. A replicate whose x lies
    below the frontier's least x is dropped; a full-data x there gives an all-NaN interval."""
    n = len(points[0][0]) if points else 0
    margins = np.full((len(points), n), np.nan)
    for b in range(n):
        front = upper_hull([(float(ox[b]), float(oy[b])) for ox, oy in others if np.isfinite(ox[b] + oy[b])])
        for i, (x, y) in enumerate(points):
            env = frontier_at(front, float(x[b])) if np.isfinite(x[b]) else None
            if env is not None:
                margins[i, b] = y[b] - env
    return [_interval(float(m[0]), m[1:], level) for m in margins]
