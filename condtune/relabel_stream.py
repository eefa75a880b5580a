"""Streaming relabel: read a dataset in record batches, score in batches and write tagged shards,
resuming after an interruption from the last complete shard.

``out`` is a folder::

    out/shard-00000.parquet ...       tagged rows, shard_rows each (.jsonl when out ends in .jsonl)
    out/relabel_manifest.json         the bins, and once the run is done the shards in order (rows, bin counts, tags)
    out/run.json                      what the run is (input, scorer, bins, settings): see claim_run
    out/.relabel/scores-00000.npy     a shard's scores (8 bytes a row): written once it is scored
    out/.relabel/rowhash-00000.npy    a tagged shard's row hashes, for the card's digest (8 bytes a row)
    out/.relabel/tagged-00000.json    a shard's entry (rows, bin counts, tag values): written once it is tagged
    out/.relabel/input-00000.json     a digest of the input rows a shard was built from: written before its scores
    out.card.json                     written last; describes all the shards (row count and digest)

Bins: with ``binning`` (e.g. from ``edges_from``) one pass scores and tags each shard. Without,
pass 1 scores every shard into ``.relabel/scores-*.npy``, the bins are fit on all the scores, and
pass 2 reads the input again and tags each shard with its saved scores (no second scoring).
Every file is written atomically, and a shard's score and tagged files mark it done, so a rerun of
the same command skips the shards already done. Memory holds one shard of rows plus all scores
(8 bytes a row).

A resume knows its input by content: each shard's input digest (:func:`input_digest`, of its raw
rows as read) is saved with its first state file, and every later read of the input (a rerun, or
pass 2 reading it again) compares each shard already scored or tagged with the rows it reads now,
before it writes anything for that shard: other rows (an input edited, replaced or reordered, even
with the same size and modification time) are a :class:`~condtune.data.DataError`, so no shard mixes
two inputs and no row gets another row's score; with ``overwrite`` the folder is cleared and the run
starts afresh (found by reading the input up to the last shard done before anything else). Rows of
shards not yet done may change: they are read for the first time. The run's record (``run.json``)
names the input by path and file sizes, not modification times: a copied or touched file with the
same rows resumes.

Under ``accelerate launch`` (or torchrun) each of N processes scores and tags the shards i with
i mod N = its rank, every process reading the input; the main process fits the bins on all the
scores and writes the manifest and the card. One process behaves as without a launcher, and a
run may resume with another number of processes.

The card's ``n_rows`` and ``data_digest`` are those :func:`condtune.data.table_digest` gives for the
shards read back in order as one table (:func:`condtune.data.read_shards`), so ``condtune train data=<out>`` checks a
shard folder the same way as a single file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from condtune.batches import input_total, iter_batches, iter_shards
from condtune.checkpointing import RUN_RECORD, claim_run
from condtune.config import ConfigError
from condtune.data import DIGEST_COLUMNS, MANIFEST, DataError, check_text, hub_spec, require_columns, write_table
from condtune.io import atomic_path, read_json, write_json
from condtune.modeling import processes
from condtune.relabel import TagCard, card_path, check_tag_columns, relabel
from condtune.tags import MAX_TAG_VALUES, Binning, TagFormat

log = logging.getLogger(__name__)

STATE_DIR = ".relabel"
SHARD_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", "": "parquet"}
INPUT_DIGESTS = "per shard"
"""in a run's record: its shards' input digests are kept (``.relabel/input-*.json``) and checked"""


def shard_name(i: int, fmt: str) -> str:
    return f"shard-{i:05d}.{fmt}"


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
    """What :func:`condtune.data.load_corpus` and :func:`condtune.relabel.relabel` check and add, on one
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


# ----------------------------------------------------------------------------- digests and shards


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row; :func:`condtune.data.table_digest` is the sha256 of these bytes (cut to 16 hex),
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


def _write_shard(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet" and "tags" in df.columns and not any(len(t) for t in df["tags"]):
        df = df.drop(columns="tags")  # Parquet cannot store an empty struct; readers take no column as no tags
    write_table(df, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, arr)


def _input_identity(data: str | Path, domains: Sequence[str] | None, *, mtimes: bool = False) -> dict:
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


# ----------------------------------------------------------------------------- the streaming relabel


def relabel_stream(
    data: str | Path,
    scorer,
    out: str | Path,
    k: int = 5,
    method: Literal["quantile", "uniform"] = "quantile",
    tag_format: TagFormat = TagFormat(),
    tag_columns: Sequence[str] = (),
    binning: Binning | None = None,
    scorer_name: str | None = None,
    prompt_col: str | None = "prompt",
    completion_col: str = "completion",
    domains: Sequence[str] | None = None,
    batch_rows: int = 1024,
    shard_rows: int = 50_000,
    overwrite: bool = False,
    max_tag_values: int = MAX_TAG_VALUES,
) -> TagCard:
    """Relabel ``data`` into the shard folder ``out`` (see the module doc) and return the card, written
    last to ``out.card.json``. The same rows, scores, bins and tags as :func:`condtune.relabel.relabel`
    on the whole table; rerunning the same call after an interruption resumes from the last complete
    shard; another run's folder, or input rows other than those a done shard was built from, are an
    error unless ``overwrite``."""
    procs = processes()  # one process, or each of a data-parallel launch
    out = Path(out)
    if batch_rows < 1 or shard_rows < 1:
        raise ConfigError(f"batch_rows={batch_rows}, shard_rows={shard_rows}: both must be >= 1")
    if k < 2:
        raise ConfigError(f"k={k}: score bins need k >= 2 (one bin would tag every row alike)")
    fmt = SHARD_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"out={out}: a streamed relabel writes Parquet or JSONL shards (a folder named *.parquet, "
            f"*.jsonl or with no suffix), not {out.suffix!r}"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out} is a file; stream=true writes a folder of shards (use another out=)")
    tag_columns = list(tag_columns)
    meta = getattr(scorer, "meta", None) and vars(scorer.meta)
    identity = {
        "input": _input_identity(data, domains),
        "columns": [prompt_col, completion_col, tag_columns],
        "scorer": [scorer_name, hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()],
        "bins": [k, method, None if binning is None else binning.edges],
        "tag_format": [tag_format.style, tag_format.score_name],
        "shards": [shard_rows, fmt],
        "input_digests": INPUT_DIGESTS,
    }
    mpath, state = out / MANIFEST, out / STATE_DIR
    record = read_json(out / RUN_RECORD) if (out / RUN_RECORD).is_file() else {}
    older = bool(record) and "input_digests" not in record  # a run recorded by an older condtune, which
    if older and record.get("input") == _input_identity(data, domains, mtimes=True):  # kept sizes and mtimes
        identity["input"] = record["input"]  # and no digests: it resumes as it did (see changed())

    def mine(i: int) -> bool:
        return i % procs.num_processes == procs.process_index

    def scores_file(i: int) -> Path:
        return state / f"scores-{i:05d}.npy"

    def tagged_file(i: int) -> Path:
        return state / f"tagged-{i:05d}.json"

    def input_file(i: int) -> Path:
        return state / f"input-{i:05d}.json"

    def done(i: int) -> bool:
        return scores_file(i).exists() or tagged_file(i).exists()

    def raw_shards() -> Iterator[tuple[int, pd.DataFrame]]:
        """The input's shards, read in the batches of the run's first read whatever batch_rows is now:
        pandas infers a column's type batch by batch, so a shard's values (5 or 5.0) and digest stay alike."""
        rows = read_json(mpath).get("read_rows", batch_rows) if mpath.is_file() else batch_rows
        return enumerate(iter_shards(iter_batches(data, rows, domains), shard_rows))

    def changed(i: int, raw: pd.DataFrame, digest: str) -> DataError | None:
        """Why shard ``i``, done, was not built from the rows ``raw`` read now (None: it was, or is not done)."""
        if not done(i):
            return None
        if input_file(i).exists():
            if read_json(input_file(i)).get("digest") == digest:
                return None
            first = i * shard_rows + 1
            return DataError(
                data,
                f"changed since shard {i} (rows {first}-{first + len(raw) - 1}) was written (its rows differ); "
                "rerun with overwrite=true to start afresh, or restore the input",
            )
        if older:  # done by an older condtune, which kept no digest: the rows as they are now (see shards())
            return None
        return DataError(
            input_file(i),
            f"missing: shard {i} is done but the input rows it was built from are not known; "
            "rerun with overwrite=true to start afresh",
        )

    def first_changed() -> DataError | None:
        """The first done shard whose rows the input no longer holds: reads the input up to the last done shard."""
        marks = [*state.glob("scores-[0-9]*.npy"), *state.glob("tagged-[0-9]*.json")]
        last = max((int(f.stem.split("-")[1]) for f in marks), default=-1)
        for i, raw in raw_shards() if last >= 0 else ():
            if (why := changed(i, raw, input_digest(raw))) is not None or i >= last:
                return why
        return None

    def shards() -> Iterator[tuple[int, pd.DataFrame]]:
        """The input's shards, each done one checked against the rows it was built from before it is handed
        on: nothing is written for a shard, or after it, when the input no longer holds its rows."""
        for i, raw in raw_shards():
            digest = input_digest(raw)
            if (why := changed(i, raw, digest)) is not None:
                raise why
            if mine(i) and not (done(i) and input_file(i).exists()):  # before the state file that marks it done
                write_json(input_file(i), {"rows": len(raw), "digest": digest})
            yield i, raw

    with procs.main_process_first():  # the main process claims (or clears) the folder; the others then agree
        old_shards = sorted(p.name for p in out.glob("shard-*.*")) if out.is_dir() else []
        outputs = (MANIFEST, STATE_DIR, *old_shards)
        claim_run(
            out, identity, "relabel", overwrite=overwrite, outputs=outputs, defaults={"input_digests": INPUT_DIGESTS}
        )
        if procs.is_main_process:
            if overwrite and (why := first_changed()) is not None:  # the same run's settings, other rows
                log.warning("%s; overwriting %s", why, out)
                for o in outputs:
                    shutil.rmtree(out / o) if (out / o).is_dir() else (out / o).unlink(missing_ok=True)
            state.mkdir(exist_ok=True)
            if not mpath.exists():  # a new (or cleared) folder: never an old card beside new shards
                card_path(out).unlink(missing_ok=True)
                write_json(mpath, {"shard_rows": shard_rows, "read_rows": batch_rows, "binning": None, "tagged": []})
            elif "read_rows" not in (manifest := read_json(mpath)):  # an older condtune's: read as now from here on
                write_json(mpath, {**manifest, "read_rows": batch_rows})
    scored, tagged = len(list(state.glob("scores-*.npy"))), len(list(state.glob("tagged-*.json")))
    if scored or tagged:
        log.info("%s: resuming (%d shards scored, %d tagged)", out, scored, tagged)
    total = input_total(data)
    quiet = not procs.is_local_main_process
    if procs.num_processes > 1:
        log.info(
            "relabel: process %d of %d takes shards %d, %d + %d, ...",
            procs.process_index + 1,
            procs.num_processes,
            procs.process_index,
            procs.process_index,
            procs.num_processes,
        )

    def score(df: pd.DataFrame, bar) -> np.ndarray:
        prompts, completions = df["prompt"].tolist(), df["completion"].tolist()
        parts = []
        for start in range(0, len(df), batch_rows):
            sl = slice(start, start + batch_rows)
            parts.append(np.asarray(scorer.score_pairs(prompts[sl], completions[sl], batch_size=64), dtype=float))
            bar.update(len(parts[-1]))
        return np.concatenate(parts) if parts else np.empty(0)

    def prepared(i: int, raw: pd.DataFrame) -> pd.DataFrame:
        return prepare(
            raw,
            data,
            prompt_col=prompt_col,
            completion_col=completion_col,
            tag_columns=tag_columns,
            offset=i * shard_rows,
            tag_format=tag_format,
            max_tag_values=max_tag_values,
        )

    # pass 1 (no bins given): every shard's scores, then the bins from all of them
    if binning is None and read_json(mpath).get("binning") is None:
        n_shards = 0
        with tqdm(total=total, desc="relabel: scoring", unit="row", disable=quiet) as bar:
            for i, raw in shards():
                n_shards += 1
                if not mine(i) or scores_file(i).exists():
                    bar.update(len(raw))
                    continue
                _save_npy(scores_file(i), score(prepared(i, raw), bar))
        procs.wait_for_everyone()
        if not n_shards:
            raise DataError(data, "no rows")
        if procs.is_main_process:
            scores = np.concatenate([np.load(scores_file(i)) for i in range(n_shards)])
            try:
                fitted = Binning.fit(scores, k=k, method=method)
            except ValueError as exc:
                raise ConfigError(
                    f"k={k}: the scorer gives the {len(scores)} rows of {data} {len(np.unique(scores))} distinct "
                    f"scores, which cannot fill {k} {method} bins ({exc}); use a smaller k (or binning=uniform)"
                ) from None
            del scores
            write_json(mpath, {**read_json(mpath), "binning": fitted.to_dict()})
        procs.wait_for_everyone()
    if binning is None:
        binning = Binning.from_dict(read_json(mpath)["binning"])
    binning = copy.deepcopy(binning)

    # pass 2 (or the only pass): tag each shard, with its saved scores or scoring it now
    desc = "relabel: tagging" if scores_file(0).exists() else "relabel: scoring"
    n_shards = 0
    with tqdm(total=total, desc=desc, unit="row", disable=quiet) as bar:
        for i, raw in shards():
            n_shards += 1
            if not mine(i) or tagged_file(i).exists():
                bar.update(len(raw))
                continue
            df = prepared(i, raw)
            if scores_file(i).exists():
                scores = np.load(scores_file(i))
                if len(scores) != len(df):
                    raise DataError(
                        data,
                        f"shard {i} has {len(df)} rows but {len(scores)} saved scores: the input "
                        "changed during the run; rerun with overwrite=true",
                    )
                bar.update(len(df))
            else:
                scores = score(df, bar)
            tagged, _ = relabel(
                df,
                scorer,
                k=binning.k,
                tag_format=tag_format,
                tag_columns=tag_columns,
                binning=copy.deepcopy(binning),
                scorer_name=scorer_name,
                source=data,
                scores=scores,
                max_tag_values=max_tag_values,
            )
            name = shard_name(i, fmt)
            _save_npy(state / f"rowhash-{i:05d}.npy", row_hashes(tagged))
            _write_shard(tagged, out / name, fmt)
            counts = np.bincount(tagged["score_bin"].to_numpy(), minlength=binning.k)
            attrs = {c: sorted(map(str, tagged[c].unique())) for c in tag_columns}
            write_json(tagged_file(i), {"file": name, "rows": len(tagged), "counts": counts.tolist(), "attrs": attrs})
    if not n_shards:
        raise DataError(data, "no rows")
    procs.wait_for_everyone()
    if not procs.is_main_process:
        procs.wait_for_everyone()  # the main process writes the manifest and the card
        return TagCard.load(out)

    # the manifest and the card, last: all shards' rows, digest, bin counts and tag values
    entries = [read_json(tagged_file(i)) for i in range(n_shards)]
    write_json(mpath, {**read_json(mpath), "tagged": entries})
    digest = hashlib.sha256()
    for i in range(n_shards):
        digest.update(np.load(state / f"rowhash-{i:05d}.npy").tobytes())
    binning.counts = [int(c) for c in np.sum([s["counts"] for s in entries], axis=0)]
    attrs = {c: sorted({v for s in entries for v in s["attrs"][c]}) for c in tag_columns}
    for c, values in attrs.items():  # each shard had at most max_tag_values; all of them together too
        if len(values) > max_tag_values:
            raise DataError(
                data,
                f"{len(values)} distinct tag values over the shards (at most {max_tag_values}: max_tag_values); "
                "group or bin them into fewer values first",
                column=c,
            )
    card = TagCard(
        binning=binning,
        tag_format=tag_format,
        attributes=attrs,
        scorer=scorer_name,
        scorer_meta=meta,
        n_rows=sum(s["rows"] for s in entries),
        data_digest=digest.hexdigest()[:16],
    )
    write_json(card_path(out), card.to_dict())
    procs.wait_for_everyone()
    return card
