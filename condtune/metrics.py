"""Agreement metrics shared by the scorer report and the benchmark (pure numpy/scipy)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(stats.pearsonr(a, b)[0])


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b)[0])


def mae(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.mean(np.abs(np.asarray(a, float) - np.asarray(b, float))))


def pairwise_accuracy(pred: Sequence[float], truth: Sequence[float], n_pairs: int = 20000, seed: int = 0) -> float:
    """Fraction of random item pairs with different true scores that ``pred`` orders the same way."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(pred), n_pairs)
    j = rng.integers(0, len(pred), n_pairs)
    keep = truth[i] != truth[j]
    if not np.any(keep):
        return float("nan")
    agree = np.sign(pred[i] - pred[j]) == np.sign(truth[i] - truth[j])
    return float(np.mean(agree[keep]))


def split_half_reliability(ratings: Sequence[Sequence[float]], seed: int = 0, repeats: int = 20) -> dict:
    """Human ceiling from individual ratings: split each item's ratings in two random halves,
    correlate the half means across items; Spearman-Brown corrects to the full rating count.

    Returns ``{"split_half_r": r, "spearman_brown": 2r/(1+r)}`` averaged over ``repeats`` splits.
    Items with fewer than 2 ratings are skipped.
    """
    rng = np.random.default_rng(seed)
    lists = [np.asarray(r, float) for r in ratings if len(r) >= 2]
    rs = []
    for _ in range(repeats):
        a, b = np.empty(len(lists)), np.empty(len(lists))
        for k, r in enumerate(lists):
            perm = rng.permutation(len(r))
            half = len(r) // 2
            a[k], b[k] = r[perm[:half]].mean(), r[perm[half:]].mean()
        rs.append(pearson(a, b))
    r = float(np.mean(rs))
    return {"split_half_r": r, "spearman_brown": 2 * r / (1 + r)}


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams (whitespace tokens), across the set of texts."""
    grams, total = set(), 0
    for t in texts:
        toks = t.split()
        for i in range(len(toks) - n + 1):
            grams.add(tuple(toks[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0
