"""A dataset read in record batches, never whole: Parquet (pyarrow record batches), JSONL line by
line, CSV/TSV in chunks, a Hugging Face dataset saved with ``save_to_disk`` (memory-mapped slices)
or named ``hf:NAME[:SPLIT]`` (``datasets`` streaming), and regrouped into shards of a fixed row
count. Used by the streaming relabel (:mod:`condtune.relabel_stream`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from condtune.errors import DataError
from condtune.io import decode_line, jsonl_record
from condtune.tables import hub_spec, load_hub, read_table
from condtune.vader import vader_corpus


def file_digest(path: str | Path | None) -> str | None:
    """What a local input holds, for a run's record: the sha256 (its first 16 hex digits) of a file's
    bytes, read 16 MiB at a time (never whole); of a folder, of its files' relative paths and bytes,
    in sorted order (hidden files, such as a download's ``.cache``, left out). None for no path (''),
    'vader', an ``hf:`` name or an HF id: what is not a local file or folder is known by its name only."""
    if not path or str(path) == "vader":
        return None
    spec = hub_spec(path)
    p = Path(spec[0] if spec else path).expanduser()
    if p.is_file() and not spec:
        files = [(None, p)]
    elif p.is_dir():
        files = [
            (f.relative_to(p).as_posix(), f)
            for f in sorted(p.rglob("*"))
            if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
        ]
    else:
        return None
    h = hashlib.sha256()
    for name, f in files:
        if name is not None:
            h.update(f"{name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()[:16]


def input_total(path: str | Path) -> int | None:
    """Row count when the format says it cheaply (Parquet metadata, an HF dataset), else None."""
    if str(path) == "vader" or hub_spec(path):
        return None
    path = Path(path)
    try:
        if path.is_dir():
            import datasets

            return len(datasets.load_from_disk(str(path)))
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # only for the progress bar
        return None
    return None


def iter_batches(path: str | Path, batch_rows: int, domains: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The raw rows of a dataset, ``batch_rows`` at a time, in order, never all at once: Parquet record
    batches, JSONL lines, CSV/TSV chunks, an HF dataset saved with ``save_to_disk`` (memory-mapped);
    'vader' (small, embedded) and a .json list are read whole and cut. Read errors are DataErrors
    naming the file, as :func:`condtune.tables.read_table` gives."""
    if str(path) == "vader":
        df = vader_corpus(domains)
        for start in range(0, len(df), batch_rows):
            yield df.iloc[start : start + batch_rows].reset_index(drop=True)
        return
    if hub_spec(path):
        yield from _hub_batches(path, batch_rows)
        return
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl" and not path.is_dir():
        yield from _jsonl_batches(path, batch_rows)
        return
    if suffix not in (".json", ".csv", ".tsv", ".parquet") and not path.is_dir():
        raise DataError(
            path, f"unsupported file type {suffix!r} (use .jsonl, .json, .csv, .tsv, .parquet or an HF dataset dir)"
        )
    try:
        if path.is_dir():
            import datasets

            ds = datasets.load_from_disk(str(path)).with_format("pandas")
            batches = (ds[start : start + batch_rows] for start in range(0, len(ds), batch_rows))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            batches = (
                b.to_pandas().drop(columns=[c for c in b.schema.names if c.startswith("__index_level_")])
                for b in pf.iter_batches(batch_size=batch_rows)
            )
        elif suffix == ".json":  # one JSON list: no way to stream it
            df = read_table(path)
            batches = (df.iloc[s : s + batch_rows].reset_index(drop=True) for s in range(0, len(df), batch_rows))
        else:
            batches = pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                encoding="utf-8-sig",
                keep_default_na=False,
                na_values=[""],
                chunksize=batch_rows,
            )
        for batch in batches:
            yield batch.reset_index(drop=True)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow/datasets raise many types
        raise DataError(path, f"cannot read it as {suffix or 'a dataset directory'}: {exc}") from None


def _hub_batches(spec: str | Path, batch_rows: int) -> Iterator[pd.DataFrame]:
    """An ``hf:`` dataset streamed (``datasets`` IterableDataset), ``batch_rows`` rows at a time."""
    ds = load_hub(spec, streaming=True)
    try:
        for batch in ds.iter(batch_size=batch_rows):
            yield pd.DataFrame(batch)
    except Exception as exc:  # a network or format error mid-stream
        raise DataError(spec, f"reading this Hugging Face dataset failed: {exc}") from None


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[pd.DataFrame]:
    """JSONL records in batches; a bad line (not JSON, not an object, not UTF-8) is a DataError naming its
    (1-based) line, as :func:`condtune.io.read_jsonl` does."""
    rows = []
    with path.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            obj = jsonl_record(path, i, decode_line(path, i, raw))
            if obj is None:
                continue
            rows.append(obj)
            if len(rows) == batch_rows:
                yield pd.DataFrame(rows)
                rows = []
    if rows:
        yield pd.DataFrame(rows)


def iter_shards(batches: Iterator[pd.DataFrame], shard_rows: int) -> Iterator[pd.DataFrame]:
    """Regroup batches into frames of exactly ``shard_rows`` rows (the last one shorter)."""
    buf: list[pd.DataFrame] = []
    n = 0
    for batch in batches:
        while len(batch):
            take = batch.iloc[: shard_rows - n]
            buf.append(take)
            n += len(take)
            batch = batch.iloc[len(take) :]
            if n == shard_rows:
                yield pd.concat(buf, ignore_index=True)
                buf, n = [], 0
    if n:
        yield pd.concat(buf, ignore_index=True)
