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

A resume knows its input by content: each shard's input digest
(:func:`~condtune.relabel_shards.input_digest`, of its raw rows as read) is saved with its first
state file, and every later read of the input (a rerun, or pass 2 reading it again) compares each
shard already scored or tagged with the rows it reads now, before it writes anything for that shard:
other rows (an input edited, replaced or reordered, even with the same size and modification time)
are a :class:`~condtune.errors.DataError`, so no shard mixes two inputs and no row gets another row's
score; with ``overwrite`` the folder is cleared and the run starts afresh (found by reading the
input up to the last shard done before anything else). Rows of shards not yet done may change: they
are read for the first time. The run's record (``run.json``) names the input by path and file sizes,
not modification times: a copied or touched file with the same rows resumes.

Under ``accelerate launch`` (or torchrun) each of N processes scores and tags the shards i with
i mod N = its rank, every process reading the input; the main process fits the bins on all the
scores and writes the manifest and the card. One process behaves as without a launcher, and a
run may resume with another number of processes.

The card's ``n_rows`` and ``data_digest`` are those :func:`condtune.tables.table_digest` gives for the
shards read back in order as one table (:func:`condtune.tables.read_shards`), so ``condtune train data=<out>`` checks a
shard folder the same way as a single file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from condtune.batches import input_total
from condtune.checkpointing import RUN_RECORD, claim_run
from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.io import atomic_path, read_json, write_json
from condtune.modeling import processes
from condtune.relabel import TagCard, card_path, relabel
from condtune.relabel_shards import STATE_DIR, ShardState, input_identity, prepare, row_hashes
from condtune.tables import MANIFEST, write_table
from condtune.tags import MAX_TAG_VALUES, Binning, TagFormat

log = logging.getLogger(__name__)

SHARD_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", "": "parquet"}
INPUT_DIGESTS = "per shard"
"""in a run's record: its shards' input digests are kept (``.relabel/input-*.json``) and checked"""


def shard_name(i: int, fmt: str) -> str:
    return f"shard-{i:05d}.{fmt}"


def _write_shard(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet" and "tags" in df.columns and not any(len(t) for t in df["tags"]):
        df = df.drop(columns="tags")  # Parquet cannot store an empty struct; readers take no column as no tags
    write_table(df, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, arr)


@dataclass
class _Run:
    """One streamed relabel: its shard folder, its scorer and how its rows are read and tagged."""

    folder: ShardState
    scorer: Any
    fmt: str
    tag_format: TagFormat
    tag_columns: list[str]
    scorer_name: str | None
    prompt_col: str | None
    completion_col: str
    max_tag_values: int

    def prepared(self, i: int, raw: pd.DataFrame) -> pd.DataFrame:
        return prepare(
            raw,
            self.folder.data,
            prompt_col=self.prompt_col,
            completion_col=self.completion_col,
            tag_columns=self.tag_columns,
            offset=i * self.folder.shard_rows,
            tag_format=self.tag_format,
            max_tag_values=self.max_tag_values,
        )

    def score(self, df: pd.DataFrame, bar) -> np.ndarray:
        prompts, completions = df["prompt"].tolist(), df["completion"].tolist()
        batch_rows, parts = self.folder.batch_rows, []
        for start in range(0, len(df), batch_rows):
            sl = slice(start, start + batch_rows)
            parts.append(np.asarray(self.scorer.score_pairs(prompts[sl], completions[sl], batch_size=64), dtype=float))
            bar.update(len(parts[-1]))
        return np.concatenate(parts) if parts else np.empty(0)


# ----------------------------------------------------------------------------- the streaming relabel


def relabel_stream(
    data: str | Path,
    scorer,
    out: str | Path,
    num_bins: int = 5,
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
    fmt = _shard_format(out, num_bins, batch_rows, shard_rows)
    folder = ShardState(data, domains, out, batch_rows, shard_rows, procs)
    run = _Run(
        folder, scorer, fmt, tag_format, list(tag_columns), scorer_name, prompt_col, completion_col, max_tag_values
    )
    meta = getattr(scorer, "meta", None) and vars(scorer.meta)
    identity, folder.older = _identity(run, meta, num_bins, method, binning)
    _claim(folder, identity, overwrite)
    total, quiet = _start(folder)
    binning = _bins(run, binning, num_bins, method, total, quiet)
    n_shards = _tag_shards(run, binning, total, quiet)
    procs.wait_for_everyone()
    if not procs.is_main_process:
        procs.wait_for_everyone()  # the main process writes the manifest and the card
        return TagCard.load(out)
    card = _write_card(run, n_shards, binning, meta)
    procs.wait_for_everyone()
    return card


def _shard_format(out: Path, k: int, batch_rows: int, shard_rows: int) -> str:
    """The shards' format for the folder ``out``, once the settings are checked."""
    if batch_rows < 1 or shard_rows < 1:
        raise ConfigError(f"batch_rows={batch_rows}, shard_rows={shard_rows}: both must be >= 1")
    if k < 2:
        raise ConfigError(f"num_bins={k}: score bins need num_bins >= 2 (one bin would tag every row alike)")
    fmt = SHARD_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"output_path={out}: a streamed relabel writes Parquet or JSONL shards (a folder named *.parquet, "
            f"*.jsonl or with no suffix), not {out.suffix!r}"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"output_path={out} is a file; stream=true writes a folder of shards (use another output_path=)"
        )
    return fmt


def _identity(run: _Run, meta: dict | None, k: int, method: str, binning: Binning | None) -> tuple[dict, bool]:
    """What the run is (its record, see claim_run), and whether the folder holds a run an older condtune
    recorded: that one kept sizes and mtimes and no digests, and resumes as it did (``ShardState.changed``)."""
    data, domains, out = run.folder.data, run.folder.domains, run.folder.out
    identity = {
        "input": input_identity(data, domains),
        "columns": [run.prompt_col, run.completion_col, run.tag_columns],
        "scorer": [run.scorer_name, hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()],
        "bins": [k, method, None if binning is None else binning.edges],
        "tag_format": [run.tag_format.style, run.tag_format.score_name],
        "shards": [run.folder.shard_rows, run.fmt],
        "input_digests": INPUT_DIGESTS,
    }
    record = read_json(out / RUN_RECORD) if (out / RUN_RECORD).is_file() else {}
    older = bool(record) and "input_digests" not in record
    if older and record.get("input") == input_identity(data, domains, mtimes=True):
        identity["input"] = record["input"]
    return identity, older


def _claim(folder: ShardState, identity: dict, overwrite: bool) -> None:
    """The main process claims (or clears) the folder and starts its manifest; the others then agree."""
    out, mpath = folder.out, folder.mpath
    with folder.procs.main_process_first():
        old_shards = sorted(p.name for p in out.glob("shard-*.*")) if out.is_dir() else []
        outputs = (MANIFEST, STATE_DIR, *old_shards)
        claim_run(
            out, identity, "relabel", overwrite=overwrite, outputs=outputs, defaults={"input_digests": INPUT_DIGESTS}
        )
        if folder.procs.is_main_process:
            if overwrite and (why := folder.first_changed()) is not None:  # the same run's settings, other rows
                log.warning("%s; overwriting %s", why, out)
                for o in outputs:
                    shutil.rmtree(out / o) if (out / o).is_dir() else (out / o).unlink(missing_ok=True)
            folder.state.mkdir(exist_ok=True)
            if not mpath.exists():  # a new (or cleared) folder: never an old card beside new shards
                card_path(out).unlink(missing_ok=True)
                manifest = {"shard_rows": folder.shard_rows, "read_rows": folder.batch_rows, "binning": None}
                write_json(mpath, {**manifest, "tagged": []})
            elif "read_rows" not in (manifest := read_json(mpath)):  # an older condtune's: read as now from here on
                write_json(mpath, {**manifest, "read_rows": folder.batch_rows})


def _start(folder: ShardState) -> tuple[int | None, bool]:
    """Says what is resumed and which shards this process takes; the input's row count (for the progress
    bars, None when unknown) and whether this process's bars are hidden."""
    procs = folder.procs
    scored, tagged = len(list(folder.state.glob("scores-*.npy"))), len(list(folder.state.glob("tagged-*.json")))
    if scored or tagged:
        log.info("%s: resuming (%d shards scored, %d tagged)", folder.out, scored, tagged)
    total = input_total(folder.data)
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
    return total, quiet


def _bins(run: _Run, binning: Binning | None, k: int, method: str, total: int | None, quiet: bool) -> Binning:
    """The bins to tag with (a copy): those given, else those pass 1 fitted (see :func:`_fit_bins`)."""
    if binning is None and read_json(run.folder.mpath).get("binning") is None:
        _fit_bins(run, k, method, total, quiet)
    if binning is None:
        binning = Binning.from_dict(read_json(run.folder.mpath)["binning"])
    return copy.deepcopy(binning)


def _fit_bins(run: _Run, k: int, method: str, total: int | None, quiet: bool) -> None:
    """Pass 1 (no bins given): score every shard (this process's share) into its scores file, then the main
    process fits the bins on all the scores and writes them to the manifest."""
    folder, n_shards = run.folder, 0
    with tqdm(total=total, desc="relabel: scoring", unit="row", disable=quiet) as bar:
        for i, raw in folder.shards():
            n_shards += 1
            if not folder.mine(i) or folder.scores_file(i).exists():
                bar.update(len(raw))
                continue
            _save_npy(folder.scores_file(i), run.score(run.prepared(i, raw), bar))
    folder.procs.wait_for_everyone()
    if not n_shards:
        raise DataError(folder.data, "no rows")
    if folder.procs.is_main_process:
        scores = np.concatenate([np.load(folder.scores_file(i)) for i in range(n_shards)])
        try:
            fitted = Binning.fit(scores, k=k, method=method)
        except ValueError as exc:
            raise ConfigError(
                f"num_bins={k}: the scorer gives the {len(scores)} rows of {folder.data} "
                f"{len(np.unique(scores))} distinct scores, which cannot fill {k} {method} bins ({exc}); "
                "use a smaller num_bins (or binning=uniform)"
            ) from None
        del scores
        write_json(folder.mpath, {**read_json(folder.mpath), "binning": fitted.to_dict()})
    folder.procs.wait_for_everyone()


def _tag_shards(run: _Run, binning: Binning, total: int | None, quiet: bool) -> int:
    """Pass 2 (or the only pass): tag this process's shards not yet tagged; the number of shards."""
    folder = run.folder
    desc = "relabel: tagging" if folder.scores_file(0).exists() else "relabel: scoring"
    n_shards = 0
    with tqdm(total=total, desc=desc, unit="row", disable=quiet) as bar:
        for i, raw in folder.shards():
            n_shards += 1
            if not folder.mine(i) or folder.tagged_file(i).exists():
                bar.update(len(raw))
                continue
            _tag_shard(run, i, run.prepared(i, raw), binning, bar)
    if not n_shards:
        raise DataError(folder.data, "no rows")
    return n_shards


def _tag_shard(run: _Run, i: int, df: pd.DataFrame, binning: Binning, bar) -> None:
    """Tag shard ``i`` (its rows ``df``, prepared) with its saved scores or scoring it now, and write its row
    hashes, the shard, then its entry (which marks it tagged)."""
    folder = run.folder
    if folder.scores_file(i).exists():
        scores = np.load(folder.scores_file(i))
        if len(scores) != len(df):
            raise DataError(
                folder.data,
                f"shard {i} has {len(df)} rows but {len(scores)} saved scores: the input "
                "changed during the run; rerun with overwrite=true",
            )
        bar.update(len(df))
    else:
        scores = run.score(df, bar)
    tagged, _ = relabel(
        df,
        run.scorer,
        num_bins=binning.k,
        tag_format=run.tag_format,
        tag_columns=run.tag_columns,
        binning=copy.deepcopy(binning),
        scorer_name=run.scorer_name,
        source=folder.data,
        scores=scores,
        max_tag_values=run.max_tag_values,
    )
    name = shard_name(i, run.fmt)
    _save_npy(folder.rowhash_file(i), row_hashes(tagged))
    _write_shard(tagged, folder.out / name, run.fmt)
    counts = np.bincount(tagged["score_bin"].to_numpy(), minlength=binning.k)
    attrs = {c: sorted(map(str, tagged[c].unique())) for c in run.tag_columns}
    write_json(folder.tagged_file(i), {"file": name, "rows": len(tagged), "counts": counts.tolist(), "attrs": attrs})


def _write_card(run: _Run, n_shards: int, binning: Binning, meta: dict | None) -> TagCard:
    """The manifest and the card, last: all shards' rows, digest, bin counts and tag values."""
    folder = run.folder
    entries = [read_json(folder.tagged_file(i)) for i in range(n_shards)]
    write_json(folder.mpath, {**read_json(folder.mpath), "tagged": entries})
    digest = hashlib.sha256()
    for i in range(n_shards):
        digest.update(np.load(folder.rowhash_file(i)).tobytes())
    binning.counts = [int(c) for c in np.sum([s["counts"] for s in entries], axis=0)]
    attrs = {c: sorted({v for s in entries for v in s["attrs"][c]}) for c in run.tag_columns}
    for c, values in attrs.items():  # each shard had at most max_tag_values; all of them together too
        if len(values) > run.max_tag_values:
            raise DataError(
                folder.data,
                f"{len(values)} distinct tag values over the shards (at most {run.max_tag_values}: max_tag_values); "
                "group or bin them into fewer values first",
                column=c,
            )
    card = TagCard(
        binning=binning,
        tag_format=run.tag_format,
        attributes=attrs,
        scorer=run.scorer_name,
        scorer_meta=meta,
        n_rows=sum(s["rows"] for s in entries),
        data_digest=digest.hexdigest()[:16],
    )
    write_json(card_path(folder.out), card.to_dict())
    return card
