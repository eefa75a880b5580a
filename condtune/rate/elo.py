"""Rankings from pairwise outcomes: Elo (online) and Bradley-Terry (maximum a posteriori).

Pure functions over :class:`Comparison` tuples ``(a, b, result)`` where ``result`` is 1.0
when ``a`` won, 0.0 when ``b`` won and 0.5 for a tie. Ratings are on the familiar Elo scale
(base 1000, 400 points = 10:1 odds); Bradley-Terry strengths ``theta`` satisfy
``P(a beats b) = sigmoid(theta_a - theta_b)``.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Iterable, Literal, NamedTuple, Sequence

LN10 = math.log(10.0)


class Comparison(NamedTuple):
    a: str
    b: str
    result: float
    """1.0: a won, 0.0: b won, 0.5: tie"""


class Record(NamedTuple):
    wins: int
    losses: int
    ties: int


class RankRow(NamedTuple):
    id: str
    rating: float
    """Elo-scale rating (1000 = average)"""
    wins: int
    losses: int
    ties: int


def _check(comparisons: Iterable[Comparison]) -> list[Comparison]:
    out = []
    for c in comparisons:
        c = Comparison(*c)
        if c.result not in (0.0, 0.5, 1.0):
            raise ValueError(f"result must be 0, 0.5 or 1, got {c.result!r} in {c}")
        if c.a == c.b:
            raise ValueError(f"a comparison needs two different players, got {c}")
        out.append(c)
    return out


def expected_score(r_a: float, r_b: float, scale: float = 400.0) -> float:
    """Elo's expected score of a against b."""
    return 1.0 / (1.0 + 10.0 ** ((r_b - r_a) / scale))


def records(comparisons: Iterable[Comparison]) -> dict[str, Record]:
    """Wins, losses and ties per player."""
    w: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for a, b, r in _check(comparisons):
        if r == 0.5:
            w[a][2] += 1
            w[b][2] += 1
        else:
            w[a if r == 1.0 else b][0] += 1
            w[b if r == 1.0 else a][1] += 1
    return {k: Record(*v) for k, v in w.items()}


def elo(
    comparisons: Sequence[Comparison], k: float = 16.0, base: float = 1000.0, scale: float = 400.0
) -> dict[str, float]:
    """Sequential Elo in the given order (zero-sum: the mean rating stays ``base``)."""
    ratings: dict[str, float] = {}
    for a, b, r in _check(comparisons):
        ra, rb = ratings.setdefault(a, base), ratings.setdefault(b, base)
        delta = k * (r - expected_score(ra, rb, scale))
        ratings[a], ratings[b] = ra + delta, rb - delta
    return ratings


def elo_averaged(
    comparisons: Sequence[Comparison], rounds: int = 50, seed: int = 0, k: float = 16.0, base: float = 1000.0
) -> dict[str, float]:
    """Elo averaged over ``rounds`` random orders, which removes most of its order dependence."""
    comps = _check(comparisons)
    rng = random.Random(seed)
    total: dict[str, float] = defaultdict(float)
    for _ in range(max(1, rounds)):
        rng.shuffle(comps)
        for key, value in elo(comps, k=k, base=base).items():
            total[key] += value
    return {key: v / max(1, rounds) for key, v in total.items()}


def bradley_terry(
    comparisons: Sequence[Comparison], prior: float = 1.0, max_iter: int = 10_000, tol: float = 1e-10
) -> dict[str, float]:
    """Bradley-Terry log-strengths (mean 0) by Hunter's MM algorithm.

    A tie counts as half a win for each side. ``prior`` adds, for every player, that many
    virtual wins and losses against a phantom player of strength 0: it keeps an unbeaten
    player finite and pulls sparsely compared players towards the middle.
    """
    comps = _check(comparisons)
    if prior <= 0:
        raise ValueError("prior must be > 0 (an unbeaten player would have infinite strength)")
    wins: dict[str, float] = defaultdict(float)
    games: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for a, b, r in comps:
        wins[a] += r
        wins[b] += 1.0 - r
        games[a][b] += 1.0
        games[b][a] += 1.0
    players = sorted(games)
    p = {i: 1.0 for i in players}
    for _ in range(max_iter):
        new = {}
        for i in players:
            denom = sum(n / (p[i] + p[j]) for j, n in games[i].items()) + 2.0 * prior / (p[i] + 1.0)
            new[i] = (wins[i] + prior) / denom
        change = max(abs(math.log(new[i] / p[i])) for i in players) if players else 0.0
        p = new
        if change < tol:
            break
    theta = {i: math.log(v) for i, v in p.items()}
    mean = sum(theta.values()) / len(theta) if theta else 0.0
    return {i: t - mean for i, t in theta.items()}


def to_elo_scale(theta: dict[str, float], base: float = 1000.0, scale: float = 400.0) -> dict[str, float]:
    """Natural-log strengths -> Elo points (400 points = 10:1 odds)."""
    return {i: base + scale * t / LN10 for i, t in theta.items()}


def rank(
    comparisons: Sequence[Comparison], method: Literal["bradley_terry", "elo"] = "bradley_terry", seed: int = 0
) -> list[RankRow]:
    """Players sorted best first, with Elo-scale ratings and their records."""
    comps = _check(comparisons)
    if method == "bradley_terry":
        ratings = to_elo_scale(bradley_terry(comps))
    elif method == "elo":
        ratings = elo_averaged(comps, seed=seed)
    else:
        raise ValueError(f"unknown ranking method {method!r} (bradley_terry or elo)")
    recs = records(comps)
    rows = [RankRow(i, r, *recs[i]) for i, r in ratings.items()]
    return sorted(rows, key=lambda row: (-row.rating, row.id))
