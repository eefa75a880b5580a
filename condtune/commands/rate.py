"""Serve the local rating page for a task file, or export the ratings collected so far.

    condtune rate --config rate
    condtune rate runs/rating/tasks.jsonl                       # http://127.0.0.1:8765/
    condtune rate runs/rating/tasks.jsonl --export              # -> runs/rating/ratings/

Ratings live in SQLite (``<task>.ratings.sqlite`` beside the task unless ``db=`` says
otherwise); the server can be stopped and restarted at any time without losing any.
``--export`` writes pointwise.jsonl and pairwise.jsonl (what `condtune scorer train` reads),
ranking.json (Bradley-Terry or Elo, of completions and of models) and card.json.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from condtune import config as C
from condtune.outputs import claim_output
from condtune.rate.export import EXPORTED, export
from condtune.rate.pages import PageText
from condtune.rate.server import make_server
from condtune.rate.store import Store, StoreError
from condtune.rate.task import TaskError, card_scale, load_card, load_task


@dataclass
class RateConfig:
    task: Path | None = None
    """task file from `condtune sample` (may also be given as the first argument)"""
    db: Path | None = None
    """ratings database (default: <task>.ratings.sqlite beside the task file)"""
    host: str = "127.0.0.1"
    """address to bind; anything but loopback lets other machines rate"""
    port: int = 8765
    """port to serve on (0 = any free port)"""
    export: bool = False
    """write the ratings files and ranking instead of serving the page"""
    output_dir: Path | None = None
    """where --export writes (default: a 'ratings' folder beside the task/db)"""
    ranking: Literal["bradley_terry", "elo"] = "bradley_terry"
    """how ranking.json ranks completions and models"""
    scale_min: int | None = None
    """lowest score (default: from the task card, else -4)"""
    scale_max: int | None = None
    """highest score (default: from the task card, else 4)"""
    text: PageText = field(default_factory=PageText)
    """wording on the page: text.question, text.low_label, text.high_label, text.ab_question, text.title"""

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port={self.port}: use a port from 1 to 65535 (0 = any free port)")


def task_first(argv: list[str]) -> list[str]:
    """``condtune rate TASKFILE [--export]``: turn the one bare path into ``task=PATH``, placed first."""
    bare = [
        a
        for i, a in enumerate(argv)
        if not a.startswith("-") and "=" not in a and (i == 0 or argv[i - 1] in ("--export", "--no-export"))
    ]
    return [f"task={bare[0]}", *[a for a in argv if a is not bare[0]]] if bare else list(argv)


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    cfg = C.parse(RateConfig, task_first(argv))
    db = check(cfg)
    if cfg.export and cfg.output_dir is not None:
        claim_output(
            cfg,
            "output_dir",
            job="rate --export",
            argv=argv,
            what="exported ratings",
            marks=EXPORTED,
            overwrite_setting=None,
        )
    try:
        store, scale = open_store(cfg, db)
    except (TaskError, StoreError) as exc:
        print(f"condtune rate: error: {exc}", file=sys.stderr)
        return 2
    if cfg.export:
        export_ratings(cfg, store, db, scale)
    else:
        serve(cfg, store, db, scale)
    return 0


def check(cfg: RateConfig) -> Path:
    """A task or a database to work on, checked before anything is claimed; the database's path."""
    if cfg.task is None and cfg.db is None:
        raise C.ConfigError("no task: run `condtune rate TASKFILE` (or give db=FILE.sqlite)")
    if cfg.db is not None:
        C.out_file(cfg.db, "db", "a ratings database file")
    return cfg.db or cfg.task.with_name(cfg.task.stem + ".ratings.sqlite")


def open_store(cfg: RateConfig, db: Path) -> tuple[Store, tuple[int, int]]:
    """The ratings database, with the task's items imported (if a task is given), and its score scale."""
    # the task and its card are read (and checked) before the database is opened: a task file that
    # does not exist or does not parse leaves no empty database behind
    task = (load_task(cfg.task), load_card(cfg.task)) if cfg.task is not None else None
    if task is None and not db.is_file():
        raise C.ConfigError(f"db={db}: no such ratings database; run `condtune rate TASKFILE` to make one")
    store = Store(db)
    if task is not None:
        items, card = task
        lo, hi = card_scale(card)
        store.set_scale(lo if cfg.scale_min is None else cfg.scale_min, hi if cfg.scale_max is None else cfg.scale_max)
        stats = store.import_items(items, source=str(cfg.task))
        print(f"{cfg.task}: {stats.total_items} items ({stats.new_items} new), {stats.total_pairs} A/B pairs; db {db}")
    return store, store.scale


def export_ratings(cfg: RateConfig, store: Store, db: Path, scale: tuple[int, int]) -> None:
    """--export: the ratings files and ranking written, each named, and the scorer command that reads them."""
    out_dir = cfg.output_dir or (cfg.task or db).parent / "ratings"
    res = export(store, out_dir, cfg.ranking)
    print(f"exported to {out_dir}: " + ", ".join(f"{k}={v}" for k, v in res.counts.items()))
    for name, path in (
        ("pointwise", res.pointwise),
        ("pairwise", res.pairwise),
        ("ranking", res.ranking),
        ("card", res.card),
    ):
        print(f"  {name:9s} {path}")
    print(
        f"next: condtune scorer train ratings={res.pointwise} columns.prompt_col=prompt "
        "columns.completion_col=completion columns.item_col=item_id columns.rater_col=rater "
        f"columns.score_min={scale[0]} columns.score_max={scale[1]}"
    )


def serve(cfg: RateConfig, store: Store, db: Path, scale: tuple[int, int]) -> None:
    """The rating page, served until Ctrl-C or SIGTERM; what was stored, said on the way out."""
    server = make_server(store, cfg.host, cfg.port, text=cfg.text)  # a port in use: a ConfigError naming it
    print(
        f"rating page: {server.url}  (scale {scale[0]}..{scale[1]}; "
        f"every answer is saved to {db} at once; Ctrl-C stops)"
    )
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops it as cleanly as Ctrl-C
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C, even when started from a shell that ignores SIGINT (`cmd &`)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    done = store.progress("", "score").ratings, store.progress("", "ab").ratings
    print(f"stopped: {done[0]} scores and {done[1]} A/B judgements stored in {db}; export with --export")
