"""Tables of rows: reading them, writing them, and checking their columns.

Files may be JSONL, JSON, CSV, TSV, Parquet, a Hugging Face dataset saved with ``save_to_disk``, an
``hf:NAME[:SPLIT]`` dataset, or a streamed relabel's shard folder (read back whole). Every problem is a
:class:`~condtune.errors.DataError` that names the file, the row (1-based, counting data records) and
the column, and says what was expected. A table whose header names a column twice (pandas would
silently read the second as ``name.1``) is an error too. The rating schemas read through these are in
:mod:`condtune.ratings`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

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


# ----------------------------------------------------------------------------- corpus


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
