"""The embedded human ratings, VADER ICWSM-2014 (Hutto & Gilbert 2014): 4 domains, 10+
individual ratings on -4..+4 for each text; as rating rows (:func:`load_vader`) or as a corpus of
texts under a header per domain (:func:`vader_corpus`)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Sequence

import pandas as pd

from condtune.assets import vader_dir
from condtune.errors import DataError

VADER_DOMAINS = {
    "tweets": "tweets",
    "movie": "movieReviewSnippets",
    "amazon": "amazonReviewSnippets",
    "nyt": "nytEditorialSnippets",
}


def load_vader(root: str | Path | None = None, domains: Sequence[str] | None = None) -> pd.DataFrame:
    """The VADER ICWSM-2014 human ratings, one row per individual rating (-4..+4).

    Columns as :func:`load_pointwise` plus ``domain``. The raters are anonymous (no ids are
    published), so ``rater`` is None and per-rater normalisation is not available; the
    per-item rating lists are kept. ``root`` defaults to the cached embedded asset.
    """
    if root is None:
        root = vader_dir()
    frames = []
    for domain in domains or list(VADER_DOMAINS):
        if domain not in VADER_DOMAINS:
            raise DataError(root, f"unknown VADER domain {domain!r}; choose from {list(VADER_DOMAINS)}")
        frames.append(_load_vader_domain(Path(root), domain))
    return pd.concat(frames, ignore_index=True)[["item_id", "prompt", "completion", "score", "rater", "domain"]]


def _load_vader_domain(root: Path, domain: str) -> pd.DataFrame:
    stem = VADER_DOMAINS[domain]
    truth_path = root / f"{stem}_GroundTruth.txt"
    ratings_path = root / f"{stem}_anonDataRatings.txt"
    texts = {}
    for i, line in enumerate(_lines(truth_path), start=1):
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DataError(truth_path, "expected id<TAB>mean<TAB>text", row=i)
        texts[parts[0]] = parts[2].strip()
    rows = []
    for i, line in enumerate(_lines(ratings_path), start=1):
        parts = line.split("\t")
        if len(parts) < 4:
            raise DataError(ratings_path, "expected id<TAB>mean<TAB>sd<TAB>[ratings]", row=i)
        try:
            scores = ast.literal_eval(parts[3].strip())
        except (ValueError, SyntaxError):
            raise DataError(ratings_path, "ratings are not a Python list literal", row=i, column="ratings") from None
        if parts[0] not in texts:
            raise DataError(ratings_path, f"id {parts[0]!r} has no text in {truth_path.name}", row=i, column="id")
        item_id = f"{domain}:{parts[0]}"
        rows += [(item_id, "", texts[parts[0]], float(s), None, domain) for s in scores]
    return pd.DataFrame(rows, columns=["item_id", "prompt", "completion", "score", "rater", "domain"])


def _lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(path, "file not found (is the VADER asset fetched? run `condtune fetch`)")
    return [ln for ln in path.read_text(encoding="utf-8-sig", errors="replace").splitlines() if ln.strip()]


VADER_PROMPTS = {
    "movie": "Movie review:",
    "amazon": "Product review:",
    "nyt": "Newspaper editorial:",
    "tweets": "Tweet:",
}


def vader_corpus(domains: Sequence[str] | None = None) -> pd.DataFrame:
    """The VADER texts as an SFT-style corpus: ``prompt`` (a header per domain), ``completion``
    (the human-written text), ``domain``, ``human_mean`` and ``n_ratings``."""
    items = load_vader(domains=domains)
    g = items.groupby("item_id", sort=False)
    out = g.agg(
        completion=("completion", "first"),
        domain=("domain", "first"),
        human_mean=("score", "mean"),
        n_ratings=("score", "size"),
    ).reset_index()
    out.insert(1, "prompt", out["domain"].map(VADER_PROMPTS))
    return out
