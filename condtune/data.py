"""Reading and validating ratings and datasets.

Two rating schemas:

* **pointwise**: one row per individual rating: ``text`` (or ``prompt`` + ``completion``),
  ``score``, optional ``rater`` and ``item_id``. Several ratings of the same item are allowed;
  the same rater rating the same item twice is an error unless ``duplicate_ratings`` says what to
  do with it (average, or keep both).
* **pairwise**: ``prompt``, ``chosen``, ``rejected`` (optional ``rater``); a pair whose two texts
  are the same (ignoring whitespace) is an error.

Files may be JSONL, JSON, CSV, TSV, Parquet, or a Hugging Face dataset saved with
``save_to_disk``. Every problem is a :class:`DataError` that names the file, the row
(1-based, counting data records) and the column, and says what was expected. A table whose
header names a column twice (pandas would silently read the second as ``name.1``) is an error too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from condtune.errors import DataError
from condtune.io import atomic_path, read_json, read_jsonl, unique_keys
from condtune.vader import vader_corpus

# ----------------------------------------------------------------------------- tables


HUB_PREFIX = "hf:"
"""``data=hf:NAME[:SPLIT]`` (or ``hf:NAME:CONFIG:SPLIT``): a dataset that ``datasets.load_dataset``
reads, on the Hugging Face hub by name or a local folder of data files laid out as a hub repo"""


def hub_spec(data: str | Path) -> tuple[str, str | None, str] | None:
    """(name, config, split) of an ``hf:`` dataset (split 'train' unless given); None for a path."""
    s = str(data)
    if not s.startswith(HUB_PREFIX):
        return None
    parts = s[len(HUB_PREFIX) :].split(":")
    if len(parts) > 3 or not all(parts):
        raise DataError(s, "expected hf:NAME, hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT (e.g. hf:stanfordnlp/imdb:train)")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return parts[0], None, parts[1] if len(parts) == 2 else "train"


def load_hub(data: str | Path, *, streaming: bool):
    """The split of an ``hf:`` dataset (an IterableDataset when ``streaming``); a DataError naming it
    when it cannot be loaded (unknown name or split, no network, no access)."""
    import datasets

    name, config, split = hub_spec(data)
    try:
        return datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as exc:  # datasets raises many types (FileNotFoundError, ValueError, hub errors)
        where = f"config {config!r}, split {split!r}" if config else f"split {split!r}"
        raise DataError(data, f"cannot load this Hugging Face dataset ({where}): {exc}") from None


MANIFEST = "relabel_manifest.json"
"""a shard folder's record of its complete shards (its presence makes a folder a shard folder): what
a streamed relabel (:mod:`condtune.relabel_stream`) writes and :func:`read_table` reads back whole"""


def is_shard_folder(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_shards(folder: str | Path) -> pd.DataFrame:
    """The complete shards of a shard folder, in order, as one table (what ``condtune train`` reads)."""
    folder = Path(folder)
    manifest = read_json(folder / MANIFEST)
    files = [folder / s["file"] for s in manifest.get("tagged", [])]
    if not files:
        raise DataError(folder, "shard folder holds no complete shard (an interrupted relabel? rerun it)")
    frames = []
    for f in files:
        if not f.exists():
            raise DataError(f, "shard listed in the manifest is missing; rerun condtune relabel")
        frames.append(read_table(f))
    return pd.concat(frames, ignore_index=True)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a JSONL/JSON/CSV/TSV/Parquet file, an HF dataset directory (``save_to_disk``) or an
    ``hf:NAME[:SPLIT]`` dataset (:data:`HUB_PREFIX`) into a DataFrame. A column name given twice
    (in a CSV/TSV header, a JSON record, or a Parquet/dataset schema) is a DataError naming it."""
    df = _read_table(path)
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise DataError(path, "this column name appears twice; give each column its own name", column=str(dup[0]))
    return df


def _check_header(path: Path, sep: str) -> None:
    """A CSV/TSV header that names a column twice: pandas would read the second as ``name.1`` and
    the file's columns would silently mean something else."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f, delimiter=sep), None) or []
    first: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name.strip() and name in first:
            raise DataError(
                path,
                f"the header names this column twice (columns {first[name]} and {i}; pandas would silently read "
                f"the second as {name + '.1'!r}); give each column its own name",
                column=name,
            )
        first.setdefault(name, i)


def _read_table(path: str | Path) -> pd.DataFrame:
    if hub_spec(path):
        return load_hub(path, streaming=False).to_pandas()
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    suffix = "".join(path.suffixes[-1:]).lower()
    try:
        if path.is_dir() and is_shard_folder(path):  # a streamed relabel's shards
            return read_shards(path)
        if path.is_dir():
            import datasets

            return datasets.load_from_disk(str(path)).to_pandas()
        if suffix == ".jsonl":
            return pd.DataFrame(read_jsonl(path))
        if suffix == ".json":
            records = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=unique_keys(path))
            if not isinstance(records, (list, dict)):
                raise DataError(path, f"expected a JSON list of records, got {type(records).__name__}")
            return pd.DataFrame(records)
        if suffix == ".csv":
            _check_header(path, ",")
            return pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
        if suffix == ".tsv":
            _check_header(path, "\t")
            return pd.read_csv(path, sep="\t", encoding="utf-8-sig", keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow/datasets raise many types
        raise DataError(path, f"cannot read it as {suffix or 'a dataset directory'}: {exc}") from None
    raise DataError(
        path, f"unsupported file type {suffix!r} (use .jsonl, .json, .csv, .tsv, .parquet or an HF dataset dir)"
    )


DIGEST_COLUMNS = ("tagged_prompt", "prompt", "completion", "completion_ids")


def table_digest(df: pd.DataFrame) -> str:
    """A digest of a tagged table's text columns (those of :data:`DIGEST_COLUMNS` it has): equal
    before a write and after reading it back, different when a row changes."""
    cols = [c for c in DIGEST_COLUMNS if c in df.columns]
    rows = df[cols].fillna("").astype(str)
    return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()[:16]


TABLE_OUTPUTS = (".jsonl", ".csv", ".parquet")


def check_table_output(path: str | Path) -> Path:
    """An output table path, checked before any work: a known suffix, and not a folder."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder; output_path= takes a file (.jsonl, .csv or .parquet)")
    if path.suffix.lower() not in TABLE_OUTPUTS:
        raise DataError(path, f"unsupported output type {path.suffix.lower()!r} (use .jsonl, .csv or .parquet)")
    return path


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame atomically; the format follows the suffix (.jsonl/.csv/.parquet)."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            raise DataError(path, f"unsupported output type {suffix!r} (use .jsonl, .csv or .parquet)")
    return path


# ----------------------------------------------------------------------------- checks


def require_columns(df: pd.DataFrame, path: str | Path, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise DataError(path, f"missing column (found columns: {list(df.columns)})", column=col)


def check_text(df: pd.DataFrame, path: str | Path, col: str, allow_empty: bool = False) -> pd.Series:
    """Return the column as str; reject nulls, non-strings and (unless allowed) empty text."""
    values = df[col]
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if allow_empty:
                continue
            raise DataError(path, "missing text (null/NaN)", row=i + 1, column=col)
        if not isinstance(v, str):
            raise DataError(path, f"expected text, got {type(v).__name__} {v!r}", row=i + 1, column=col)
        if not allow_empty and not v.strip():
            raise DataError(path, "empty text", row=i + 1, column=col)
    return values.fillna("").astype(str)


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


def load_corpus(
    path: str | Path,
    *,
    prompt_col: str | None = "prompt",
    completion_col: str = "completion",
    domains: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A dataset of (prompt, completion) rows to relabel or train on; other columns are kept.

    ``path='vader'`` gives :func:`vader_corpus`. ``prompt_col=None`` means no prompt (empty).
    """
    if str(path) == "vader":
        return vader_corpus(domains)
    df = read_table(path)
    if df.empty:
        raise DataError(path, "no rows")
    require_columns(df, path, [c for c in (prompt_col, completion_col) if c])
    df = df.copy()
    df["completion"] = check_text(df, path, completion_col)
    df["prompt"] = check_text(df, path, prompt_col, allow_empty=True) if prompt_col else ""
    return df


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
