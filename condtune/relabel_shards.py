"""A streamed relabel's shards (see :mod:`condtune.relabel_stream` for the folder): the input read
shard by shard, each batch checked as a whole table is, the digests and identity that tell which rows
a shard was built from, and the folder's state files that mark a shard done, against which a resumed
run reads its input."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from condtune.batches import iter_batches, iter_shards
from condtune.errors import DataError
from condtune.io import read_json, write_json
from condtune.relabel import check_tag_columns
from condtune.tables import DIGEST_COLUMNS, MANIFEST, check_text, hub_spec, require_columns
from condtune.tags import MAX_TAG_VALUES, TagFormat

STATE_DIR = ".relabel"

# ----------------------------------------------------------------------------- reading in batches


def _shifted(exc: DataError, offset: int) -> DataError:
    """``exc`` with its row moved from a batch's numbering to the dataset's."""
    where = (
        exc.path
        + (f", row {exc.row}" if exc.row is not None else "")
        + (f", column {exc.column!r}" if exc.column is not None else "")
    )
    message = str(exc)[len(where) + 2 :]
    return DataError(exc.path, message, row=None if exc.row is None else exc.row + offset, column=exc.column)


def prepare(
    df: pd.DataFrame,
    source: str | Path,
    *,
    prompt_col: str | None,
    completion_col: str,
    tag_columns: Sequence[str],
    offset: int,
    tag_format: TagFormat = TagFormat(),
    max_tag_values: int = MAX_TAG_VALUES,
) -> pd.DataFrame:
    """What :func:`condtune.tables.load_corpus` and :func:`condtune.relabel.relabel` check and add, on one
    batch whose first row is row ``offset + 1`` of the dataset (errors name the dataset's row)."""
    try:
        if str(source) != "vader":
            require_columns(df, source, [c for c in (prompt_col, completion_col) if c])
            df = df.copy()
            df["completion"] = check_text(df, source, completion_col)
            df["prompt"] = check_text(df, source, prompt_col, allow_empty=True) if prompt_col else ""
        for col in tag_columns:
            if col not in df.columns:
                raise DataError(source, f"tag column missing (found columns: {list(df.columns)})", column=col)
            bad = np.flatnonzero(df[col].isna().to_numpy())
            if len(bad):
                raise DataError(source, "tag value is missing", row=int(bad[0]) + 1, column=col)
        check_tag_columns(
            df,
            tag_columns,
            source,
            tag_format=tag_format,
            prompt_col=prompt_col,
            completion_col=completion_col,
            max_values=max_tag_values,
        )
    except DataError as exc:
        raise _shifted(exc, offset) from None
    return df


# ----------------------------------------------------------------------------- digests and identity


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row; :func:`condtune.tables.table_digest` is the sha256 of these bytes (cut to 16 hex),
    so the digest of shards is the digest of their row hashes in order."""
    cols = [c for c in DIGEST_COLUMNS if c in df.columns]
    return pd.util.hash_pandas_object(df[cols].fillna("").astype(str), index=False).to_numpy()


def input_digest(raw: pd.DataFrame) -> str:
    """A digest of a shard's raw input rows (every column, as read: before :func:`prepare`), in order:
    equal when the input holds the same rows there, different when a row, its place or a column changes.
    The rows' hashes as :func:`row_hashes` takes them, plus the column names and where values are null."""
    raw = raw[sorted(raw.columns, key=str)]
    h = hashlib.sha256(json.dumps([str(c) for c in raw.columns]).encode())
    h.update(pd.util.hash_pandas_object(raw.fillna("").astype(str), index=False).to_numpy().tobytes())
    h.update(np.packbits(raw.isna().to_numpy()).tobytes())
    return h.hexdigest()[:16]


def input_identity(data: str | Path, domains: Sequence[str] | None, *, mtimes: bool = False) -> dict:
    """What the input is: its path and, for a file or folder, its files' sizes (what its rows are is
    checked shard by shard with :func:`input_digest`). ``mtimes``: also their modification times, as
    an older condtune recorded it."""
    if str(data) == "vader":
        return {"path": "vader", "domains": list(domains or [])}
    spec = hub_spec(data)
    p = Path(spec[0] if spec else data)
    if spec and not p.is_dir():  # a hub name: its rows are checked by their digests as they stream in
        return {"path": str(data)}
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return {
        "path": str(data) if spec else str(p.resolve()),
        "files": [[f.name, f.stat().st_size, *([f.stat().st_mtime_ns] if mtimes else [])] for f in files],
    }


# ----------------------------------------------------------------------------- the folder's state


@dataclass
class ShardState:
    """A run's shard folder ``out``: each shard's state files, the shards this process takes, and the
    input read shard by shard, each shard already done checked against the rows it was built from."""

    data: str | Path
    domains: Sequence[str] | None
    out: Path
    batch_rows: int
    shard_rows: int
    procs: Any
    """one process, or each of a data-parallel launch (:func:`condtune.modeling.processes`)"""
    older: bool = False
    """the folder holds a run an older condtune recorded (sizes and mtimes, no input digests)"""

    @property
    def state(self) -> Path:
        return self.out / STATE_DIR

    @property
    def mpath(self) -> Path:
        return self.out / MANIFEST

    def mine(self, i: int) -> bool:
        return i % self.procs.num_processes == self.procs.process_index

    def scores_file(self, i: int) -> Path:
        return self.state / f"scores-{i:05d}.npy"

    def tagged_file(self, i: int) -> Path:
        return self.state / f"tagged-{i:05d}.json"

    def input_file(self, i: int) -> Path:
        return self.state / f"input-{i:05d}.json"

    def rowhash_file(self, i: int) -> Path:
        return self.state / f"rowhash-{i:05d}.npy"

    def done(self, i: int) -> bool:
        return self.scores_file(i).exists() or self.tagged_file(i).exists()

    def raw_shards(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """The input's shards, read in the batches of the run's first read whatever batch_rows is now:
        pandas infers a column's type batch by batch, so a shard's values (5 or 5.0) and digest stay alike."""
        rows = read_json(self.mpath).get("read_rows", self.batch_rows) if self.mpath.is_file() else self.batch_rows
        return enumerate(iter_shards(iter_batches(self.data, rows, self.domains), self.shard_rows))

    def changed(self, i: int, raw: pd.DataFrame, digest: str) -> DataError | None:
        """Why shard ``i``, done, was not built from the rows ``raw`` read now (None: it was, or is not done)."""
        if not self.done(i):
            return None
        if self.input_file(i).exists():
            if read_json(self.input_file(i)).get("digest") == digest:
                return None
            first = i * self.shard_rows + 1
            return DataError(
                self.data,
                f"changed since shard {i} (rows {first}-{first + len(raw) - 1}) was written (its rows differ); "
                "rerun with overwrite=true to start afresh, or restore the input",
            )
        if self.older:  # done by an older condtune, which kept no digest: the rows as they are now (see shards())
            return None
        return DataError(
            self.input_file(i),
            f"missing: shard {i} is done but the input rows it was built from are not known; "
            "rerun with overwrite=true to start afresh",
        )

    def first_changed(self) -> DataError | None:
        """The first done shard whose rows the input no longer holds: reads the input up to the last done shard."""
        marks = [*self.state.glob("scores-[0-9]*.npy"), *self.state.glob("tagged-[0-9]*.json")]
        last = max((int(f.stem.split("-")[1]) for f in marks), default=-1)
        for i, raw in self.raw_shards() if last >= 0 else ():
            if (why := self.changed(i, raw, input_digest(raw))) is not None or i >= last:
                return why
        return None

    def shards(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """The input's shards, each done one checked against the rows it was built from before it is handed
        on: nothing is written for a shard, or after it, when the input no longer holds its rows."""
        for i, raw in self.raw_shards():
            digest = input_digest(raw)
            if (why := self.changed(i, raw, digest)) is not None:
                raise why
            if self.mine(i) and not (self.done(i) and self.input_file(i).exists()):  # before the file marking it done
                write_json(self.input_file(i), {"rows": len(raw), "digest": digest})
            yield i, raw
