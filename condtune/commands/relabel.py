"""Tag a dataset with quantised scorer bins (and column tags).

    condtune relabel --config relabel
    condtune relabel data=my.jsonl scorer=runs/scorer num_bins=5 tag_columns=[domain] output_path=runs/tagged.jsonl

Writes ``output_path`` (the rows plus score, score_bin, tags, tagged_prompt) and ``output_path.card.json``
(scorer, bin edges and medians, count per bin, tag vocabulary), both atomically.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from condtune import config as C
from condtune.checkpointing import RUN_RECORD
from condtune.io import read_json
from condtune.modeling import processes
from condtune.outputs import claim_output, size_of
from condtune.relabel import TagCard, card_path, relabel, write_tagged
from condtune.relabel_stream import MANIFEST, relabel_stream
from condtune.scorer import Scorer
from condtune.tables import check_table_output, load_corpus
from condtune.tags import MAX_TAG_VALUES, TagFormat
from condtune.trl_layout import write_trl


@dataclass
class RelabelConfig:
    data: str = "vader"
    """dataset to tag: 'vader' (the embedded corpus), a jsonl/csv/parquet file, an HF dataset dir
    (save_to_disk) or hf:NAME[:SPLIT] (a Hugging Face dataset by name, or a local folder of data files)"""
    prompt_col: str | None = "prompt"
    """prompt column (null: no prompt)"""
    completion_col: str = "completion"
    """completion column (the text the scorer rates)"""
    domains: list[str] = field(default_factory=list)
    """vader only: subset of tweets/movie/amazon/nyt"""
    scorer: str = "runs/scorer"
    """a scorer directory from `condtune scorer train`"""
    num_bins: int = 5
    """number of score bins"""
    binning: Literal["quantile", "uniform"] = "quantile"
    """equal-count or equal-width bins"""
    edges_from: str | None = None
    """reuse the bins of an existing card (a tagged dataset or its .card.json) instead of fitting"""
    tag_columns: list[str] = field(default_factory=list)
    """extra tags taken from columns, e.g. [domain]"""
    max_tag_values: int = MAX_TAG_VALUES
    """at most this many distinct values a tag column (a numeric column must be binned into fewer first)"""
    tag_style: Literal["text", "token"] = "text"
    """tags as plain words or as new special tokens"""
    output_path: str = "runs/tagged.jsonl"
    """output file (.jsonl/.csv/.parquet); the card is written beside it"""
    layout: Literal["condtune", "trl"] = "condtune"
    """condtune: the table `condtune train` reads; trl: prompt = the tagged prompt, for trl's SFTTrainer"""
    stream: bool = False
    """batches, for big data: out is a folder of shard-*.parquet (.jsonl if out ends so), a rerun resumes"""
    batch_rows: int = 1024
    """stream: rows read and scored at a time"""
    shard_rows: int = 50_000
    """stream: rows per output shard (the unit of resume)"""
    overwrite: bool = False
    """stream: start afresh in an output_path folder that holds another relabel run (other input, scorer or settings)"""

    def __post_init__(self):
        if self.num_bins < 2:
            raise ValueError(
                f"num_bins={self.num_bins}: score bins need num_bins >= 2 (one bin would tag every row alike)"
            )
        if self.max_tag_values < 1:
            raise ValueError(f"max_tag_values={self.max_tag_values}: allow at least 1 value a tag column")
        if self.layout == "trl" and self.stream:
            raise ValueError("layout=trl writes one table: use it without stream=true")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(RelabelConfig, argv)
    claim(cfg, argv)
    procs = processes()  # `accelerate launch -m condtune relabel stream=true`: shards split over processes
    if procs.num_processes > 1 and not cfg.stream:
        raise C.ConfigError(f"several processes ({procs.num_processes}) relabel with stream=true only")
    df = None if cfg.stream else load_rows(cfg)  # stream=true reads, scores and writes in batches, never all
    scorer = Scorer.load(cfg.scorer)
    common = tagging(cfg)
    if cfg.stream:
        card = relabel_stream(cfg.data, scorer, cfg.output_path, **common, **stream_settings(cfg))
        if not procs.is_main_process:
            return 0
        n_shards = len(read_json(Path(cfg.output_path) / MANIFEST)["tagged"])
        print(
            f"tagged {card.n_rows} rows -> {cfg.output_path}/ ({n_shards} shards; card: {card_path(cfg.output_path)})"
        )
    else:
        tagged, card = relabel(df, scorer, **common, source=cfg.data)
        (write_trl if cfg.layout == "trl" else write_tagged)(tagged, card, cfg.output_path)
        print(f"tagged {len(tagged)} rows -> {cfg.output_path}  (card: {card_path(cfg.output_path)})")
    report_bins(card)
    return 0


def claim(cfg: RelabelConfig, argv: list[str]) -> None:
    """The output (a file, or with stream=true a shard folder) and its card, claimed before anything loads."""
    claim_output(
        cfg,
        "output_path",
        job="relabel",
        argv=argv,
        folder=cfg.stream,
        what="a streaming relabel run" if cfg.stream else "a file",
        marks=(MANIFEST, RUN_RECORD),
        overwrite=cfg.overwrite,
        beside=[card_path(cfg.output_path)],
        need_bytes=2 * size_of(cfg.data),  # the rows again, with their tags and tagged prompts
    )


def load_rows(cfg: RelabelConfig) -> pd.DataFrame:
    """In memory: the output path checked, then the whole dataset read."""
    check_table_output(cfg.output_path)  # before scoring: a folder or unknown suffix there would fail only at the end
    return load_corpus(
        cfg.data, prompt_col=cfg.prompt_col, completion_col=cfg.completion_col, domains=cfg.domains or None
    )


def tagging(cfg: RelabelConfig) -> dict:
    """The settings both ways of relabelling share: bins (fitted, or those of edges_from's card) and tags."""
    binning = TagCard.load(cfg.edges_from).binning if cfg.edges_from else None
    return dict(
        num_bins=cfg.num_bins,
        method=cfg.binning,
        tag_format=TagFormat(style=cfg.tag_style),
        tag_columns=cfg.tag_columns,
        max_tag_values=cfg.max_tag_values,
        binning=binning,
        scorer_name=cfg.scorer,
    )


def stream_settings(cfg: RelabelConfig) -> dict:
    """What stream=true reads and writes by: the input's columns, batch and shard sizes, overwrite."""
    return dict(
        prompt_col=cfg.prompt_col,
        completion_col=cfg.completion_col,
        domains=cfg.domains or None,
        batch_rows=cfg.batch_rows,
        shard_rows=cfg.shard_rows,
        overwrite=cfg.overwrite,
    )


def report_bins(card: TagCard) -> None:
    """The bins' table: score range, median and count of each."""
    print("bin | score range | median | count")
    edges = [float("-inf"), *card.binning.edges, float("inf")]
    for b in range(card.binning.k):
        print(
            f"{b + 1:>3} | [{edges[b]:+.2f}, {edges[b + 1]:+.2f}) | "
            f"{card.binning.centers[b]:+.2f} | {card.binning.counts[b]}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
