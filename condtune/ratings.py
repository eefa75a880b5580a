"""Ratings: reading and validating the two rating schemas, grouping ratings by item, and splitting them.

* **pointwise**: one row per individual rating: ``text`` (or ``prompt`` + ``completion``),
  ``score``, optional ``rater`` and ``item_id``. Several ratings of the same item are allowed;
  the same rater rating the same item twice is an error unless ``duplicate_ratings`` says what to
  do with it (average, or keep both).
* **pairwise**: ``prompt``, ``chosen``, ``rejected`` (optional ``rater``); a pair whose two texts
  are the same (ignoring whitespace) is an error.

Files are read by :func:`condtune.tables.read_table` (any format it reads). Every problem is a
:class:`~condtune.errors.DataError` that names the file, the row (1-based, counting data records) and
the column, and says what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from condtune.errors import DataError
from condtune.tables import check_text, read_table, require_columns

# ----------------------------------------------------------------------------- scores


def check_scores(
    df: pd.DataFrame, path: str | Path, col: str, *, lo: float | None = None, hi: float | None = None
) -> pd.Series:
    """Return the column as float; reject non-numbers, NaN/inf and values outside [lo, hi]."""
    numeric = pd.to_numeric(df[col], errors="coerce")
    for i, (raw, v) in enumerate(zip(df[col], numeric)):
        if isinstance(raw, bool) or not np.isfinite(v):
            raise DataError(path, f"expected a finite number, got {raw!r}", row=i + 1, column=col)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise DataError(path, f"score {v:g} is outside the declared range [{lo}, {hi}]", row=i + 1, column=col)
    return numeric.astype(float)


def check_scores_vary(scores: pd.Series, path: str | Path, col: str) -> None:
    """Scores to learn from or evaluate against must not all be equal: a constant target teaches a
    scorer nothing and makes every correlation undefined (NaN). One score alone is left to the
    checks on the number of items."""
    values = pd.to_numeric(scores, errors="coerce").to_numpy(float)
    if len(values) >= 2 and np.nanmin(values) == np.nanmax(values):
        raise DataError(
            path,
            f"all {len(values)} scores are {values[0]:g}: a constant score teaches a scorer nothing and its "
            "correlations would be NaN; the ratings must vary",
            column=col,
        )


# ----------------------------------------------------------------------------- pointwise


@dataclass(frozen=True)
class PointwiseSpec:
    """Column names and score range of a pointwise ratings file."""

    text_col: str = "text"
    """the rated text (used when prompt_col/completion_col are not set)"""
    prompt_col: str | None = None
    """optional prompt column; the scorer then sees prompt + completion"""
    completion_col: str | None = None
    """completion column (with prompt_col)"""
    score_col: str = "score"
    """the rating"""
    rater_col: str | None = None
    """optional rater id column (enables per-rater normalisation)"""
    item_col: str | None = None
    """optional item id column (several ratings per item); defaults to identical text"""
    score_min: float | None = None
    """lowest allowed score (None: no check)"""
    score_max: float | None = None
    """highest allowed score (None: no check)"""
    duplicate_ratings: Literal["error", "mean", "keep"] = "error"
    """the same rater rating the same item twice (needs rater_col): an error, their mean as one rating, or keep both"""

    def __post_init__(self):
        lo, hi = self.score_min, self.score_max
        for name, v in (("score_min", lo), ("score_max", hi)):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name}={v!r} is out of range (a finite number, or null for no check)")
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"score_min={lo!r} is not below score_max={hi!r}: the declared score range is empty")


POINTWISE_COLUMNS = ["item_id", "prompt", "completion", "score", "rater"]


def load_pointwise(path: str | Path, spec: PointwiseSpec = PointwiseSpec()) -> pd.DataFrame:
    """One row per rating: ``item_id, prompt, completion, score, rater`` (validated)."""
    df = read_table(path)
    if df.empty:
        raise DataError(path, "no rows")
    use_pair = spec.completion_col is not None
    text_cols = [c for c in (spec.prompt_col, spec.completion_col) if c] if use_pair else [spec.text_col]
    optional = [c for c in (spec.rater_col, spec.item_col) if c]
    require_columns(df, path, [*text_cols, spec.score_col, *optional])
    if use_pair:
        completion = check_text(df, path, spec.completion_col)
        prompt = check_text(df, path, spec.prompt_col, allow_empty=True) if spec.prompt_col else ""
    else:
        completion, prompt = check_text(df, path, spec.text_col), ""
    out = pd.DataFrame({"prompt": prompt, "completion": completion})
    out["score"] = check_scores(df, path, spec.score_col, lo=spec.score_min, hi=spec.score_max)
    out["rater"] = _ids(df[spec.rater_col]) if spec.rater_col else None
    if spec.item_col:
        out["item_id"] = _ids(df[spec.item_col])
        missing = np.flatnonzero(out["item_id"].isna().to_numpy())
        if len(missing):
            raise DataError(path, "missing item id", row=int(missing[0]) + 1, column=spec.item_col)
        check_one_text_per_item(out, path, spec.item_col)
    else:
        out["item_id"] = pd.factorize(out["prompt"] + "\x00" + out["completion"])[0].astype(str)
    if spec.rater_col:
        out = repeated_ratings(out, path, spec)
    return out[POINTWISE_COLUMNS]


def repeated_ratings(ratings: pd.DataFrame, path: str | Path, spec: PointwiseSpec) -> pd.DataFrame:
    """The same rater rating the same item twice: by ``spec.duplicate_ratings``, an error naming both
    rows (the default: a repeat would count one rater twice in the item's mean and in its split-half
    reliability), one rating at their mean (``mean``), or both kept (``keep``). Ratings without a rater id
    are never repeats."""
    if spec.duplicate_ratings == "keep":
        return ratings
    has = ratings["rater"].notna().to_numpy()
    key = ratings["item_id"].astype(str) + "\x00" + ratings["rater"].astype(str)
    repeat = np.zeros(len(ratings), dtype=bool)
    repeat[has] = key[has].duplicated(keep="first").to_numpy()
    if not repeat.any():
        return ratings
    if spec.duplicate_ratings == "mean":
        out = ratings.copy()
        out.loc[has, "score"] = out[has].groupby(key[has].to_numpy(), sort=False)["score"].transform("mean")
        return out[~repeat].reset_index(drop=True)
    row = int(np.flatnonzero(repeat)[0])
    first_row = int(np.flatnonzero(has & (key == key.iloc[row]).to_numpy())[0])
    text = ratings["completion"].iloc[row]
    item = (
        f"item {ratings['item_id'].iloc[row]!r}"
        if spec.item_col
        else f"the text {text[:37] + '...' if len(text) > 40 else text!r}"
    )
    raise DataError(
        path,
        f"rater {ratings['rater'].iloc[row]!r} rated {item} twice: rows {first_row + 1} and {row + 1}; set "
        "columns.duplicate_ratings=mean to average a rater's repeats, or =keep to count each",
        row=row + 1,
        column=spec.rater_col,
    )


def _ids(values: pd.Series) -> pd.Series:
    """Ids as strings, a missing one (null/NaN) as None (not the string 'None' or 'nan')."""
    return values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def check_one_text_per_item(ratings: pd.DataFrame, path: str | Path, column: str = "item_id") -> None:
    """Every rating of an item must be of the same text: one item id on two different texts would
    credit the second text's ratings to the first. The error names both rows (1-based)."""
    text = ratings["prompt"].astype(str) + "\x00" + ratings["completion"].astype(str)
    first = text.groupby(ratings["item_id"].to_numpy(), sort=False).transform("first")
    bad = np.flatnonzero((text != first).to_numpy())
    if len(bad):
        row = int(bad[0])
        item = ratings["item_id"].iloc[row]
        first_row = int(np.flatnonzero((ratings["item_id"] == item).to_numpy())[0])

        def short(i: int) -> str:
            t = ratings["completion"].iloc[i]
            return repr(t if len(t) <= 40 else t[:37] + "...")

        raise DataError(
            path,
            f"item id {item!r} is on two different texts: row {first_row + 1} {short(first_row)} and row {row + 1} "
            f"{short(row)} (the second would be counted as ratings of the first); give each text its own id",
            row=row + 1,
            column=column,
        )


def text_of(prompt: str, completion: str) -> str:
    """What a scorer reads for a (prompt, completion): the completion after its prompt."""
    return f"{prompt.rstrip()}\n{completion}" if prompt and prompt.strip() else completion


def to_items(ratings: pd.DataFrame) -> pd.DataFrame:
    """Group individual ratings by item: ``item_id, prompt, completion, text, mean, n, scores, raters``."""
    grouped = ratings.groupby("item_id", sort=False)
    items = grouped.agg(
        prompt=("prompt", "first"), completion=("completion", "first"), mean=("score", "mean"), n=("score", "size")
    )
    items["scores"] = grouped["score"].agg(list)
    items["raters"] = grouped["rater"].agg(list)
    items = items.reset_index()
    items["text"] = [text_of(p, c) for p, c in zip(items["prompt"], items["completion"])]
    return items


# ----------------------------------------------------------------------------- pairwise

PAIRWISE_COLUMNS = ["prompt", "chosen", "rejected", "rater"]


def load_pairwise(
    path: str | Path,
    *,
    prompt_col: str = "prompt",
    chosen_col: str = "chosen",
    rejected_col: str = "rejected",
    rater_col: str | None = None,
) -> pd.DataFrame:
    """Preference pairs ``prompt, chosen, rejected, rater`` (validated)."""
    df = read_table(path)
    if df.empty:
        raise DataError(path, "no rows")
    require_columns(df, path, [c for c in (prompt_col, chosen_col, rejected_col, rater_col) if c])
    out = pd.DataFrame(
        {
            "prompt": check_text(df, path, prompt_col, allow_empty=True),
            "chosen": check_text(df, path, chosen_col),
            "rejected": check_text(df, path, rejected_col),
        }
    )
    same = np.flatnonzero((_squeeze(out["chosen"]) == _squeeze(out["rejected"])).to_numpy())
    if len(same):
        row = int(same[0])
        exact = out["chosen"].iloc[row] == out["rejected"].iloc[row]
        raise DataError(
            path,
            "chosen and rejected are identical"
            + ("" if exact else " (they differ only in whitespace)")
            + "; a pair must prefer one text over another",
            row=row + 1,
            column=rejected_col,
        )
    out["rater"] = df[rater_col].astype(str) if rater_col else None
    return out[PAIRWISE_COLUMNS]


def _squeeze(texts: pd.Series) -> pd.Series:
    """Texts with runs of whitespace made one space and the ends stripped: what a reader sees."""
    return texts.str.split().str.join(" ")


# ----------------------------------------------------------------------------- splits


def split_ratings(ratings: pd.DataFrame, which: str, seed: int) -> pd.DataFrame:
    """Keep one of two disjoint random halves of each item's individual ratings."""
    if which == "all":
        return ratings
    rng = np.random.default_rng(seed + 12345)
    keys = rng.random(len(ratings))
    rank = pd.Series(keys).groupby(ratings["item_id"].to_numpy()).rank(method="first").to_numpy()
    size = ratings.groupby("item_id")["item_id"].transform("size").to_numpy()
    first = rank <= size / 2
    return ratings[first if which == "half_a" else ~first].reset_index(drop=True)


def split_items(ids: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out entries (fixed by seed, independent of rating_split)."""
    rng = np.random.default_rng(seed)
    return rng.random(len(ids)) < val_fraction
