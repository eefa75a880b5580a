"""SQLite store for ratings (WAL, synchronous=FULL): a rating saved is never lost.

Exactly-once is enforced by the schema, not by the server: ``UNIQUE(rater, item_id)`` on
scores and ``UNIQUE(rater, pair_id)`` on A/B comparisons, so a duplicated or raced post is
a :class:`DuplicateRating` and changes nothing. A skip is stored too (score NULL / choice
``skip``), so a rater is never shown the same item or pair again.

Every call opens its own short-lived connection, so one :class:`Store` is safe to share
between the threads of the web server.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Literal, NamedTuple

from condtune.rate.task import TaskItem

SCHEMA_VERSION = "1"
CHOICES = ("left", "right", "tie", "skip")
_RATER_RE = re.compile(r"^\w[\w .@-]{0,39}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
  item_id TEXT PRIMARY KEY, prompt TEXT NOT NULL, completion TEXT NOT NULL,
  model TEXT NOT NULL, sample_index INTEGER NOT NULL, ord INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_prompt ON items(prompt);
CREATE TABLE IF NOT EXISTS pairs(
  pair_id INTEGER PRIMARY KEY,
  item_lo TEXT NOT NULL REFERENCES items(item_id), item_hi TEXT NOT NULL REFERENCES items(item_id),
  UNIQUE(item_lo, item_hi), CHECK(item_lo < item_hi));
CREATE TABLE IF NOT EXISTS scores(
  id INTEGER PRIMARY KEY, rater TEXT NOT NULL, item_id TEXT NOT NULL REFERENCES items(item_id),
  score REAL, created REAL NOT NULL, UNIQUE(rater, item_id));
CREATE INDEX IF NOT EXISTS scores_item ON scores(item_id);
CREATE TABLE IF NOT EXISTS comparisons(
  id INTEGER PRIMARY KEY, rater TEXT NOT NULL, pair_id INTEGER NOT NULL REFERENCES pairs(pair_id),
  left_id TEXT NOT NULL, right_id TEXT NOT NULL,
  choice TEXT NOT NULL CHECK(choice IN ('left', 'right', 'tie', 'skip')),
  created REAL NOT NULL, UNIQUE(rater, pair_id));
CREATE INDEX IF NOT EXISTS comparisons_pair ON comparisons(pair_id);
"""


class RatingError(Exception):
    """A rating the store refuses; ``status`` is the HTTP status the server answers with."""

    status = 400


class InvalidRating(RatingError):
    status = 400


class UnknownTarget(RatingError):
    status = 404


class DuplicateRating(RatingError):
    status = 409


class StoreError(ValueError):
    """The database does not match the task file (changed items, another scale)."""


class Item(NamedTuple):
    item_id: str
    prompt: str
    completion: str
    model: str


class Pair(NamedTuple):
    pair_id: int
    prompt: str
    left: Item
    right: Item


class Progress(NamedTuple):
    done: int
    """items (or pairs) this rater has answered, skips included"""
    total: int
    """items (or pairs) in the task"""
    ratings: int
    """answers from all raters, skips excluded"""
    raters: int
    """distinct raters in this mode"""


def check_rater(name: str) -> str:
    """Normalise a rater name; 1-40 letters, digits, space, ``_ . @ -``."""
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not _RATER_RE.match(name):
        raise InvalidRating(
            "rater name must be 1-40 letters, digits, spaces or _ . @ - (starting with a letter or digit)"
        )
    return name


def _rank(rater: str, key: str) -> int:
    """A per-rater pseudo-random order, so raters see items in different orders."""
    return int.from_bytes(hashlib.blake2b(f"{rater}\x00{key}".encode(), digest_size=6).digest(), "big")


@dataclass
class ImportStats:
    new_items: int
    new_pairs: int
    total_items: int
    total_pairs: int


class Store:
    """Ratings of one task, in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder; db= takes a ratings database file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                con.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_hex(32),))
                con.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))
        except sqlite3.DatabaseError as exc:  # another file at the path, or a damaged database
            raise StoreError(f"{self.path}: not a ratings database ({exc}); give another db= or move it") from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection (use ``BEGIN IMMEDIATE`` for multi-statement writes)."""
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=30000")
            con.create_function("rk", 2, _rank, deterministic=True)
            yield con
        finally:
            con.close()

    # ------------------------------------------------------------------ metadata
    def meta(self, key: str, default: str | None = None) -> str | None:
        with self.connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    @property
    def secret(self) -> bytes:
        return bytes.fromhex(self.meta("secret"))

    @property
    def scale(self) -> tuple[int, int]:
        lo, hi = self.meta("scale_min"), self.meta("scale_max")
        if lo is None or hi is None:
            raise StoreError(f"{self.path}: no score scale yet (import a task first)")
        return int(lo), int(hi)

    def set_scale(self, lo: int, hi: int) -> None:
        """Fix the score scale; changing it once scores exist is an error."""
        if lo >= hi:
            raise StoreError(f"score scale must have min < max, got {lo}..{hi}")
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            old = dict(con.execute("SELECT key, value FROM meta WHERE key IN ('scale_min','scale_max')").fetchall())
            n = con.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            if old and (int(old["scale_min"]), int(old["scale_max"])) != (lo, hi) and n:
                con.execute("ROLLBACK")
                raise StoreError(
                    f"{self.path}: holds {n} scores on the scale {old['scale_min']}..{old['scale_max']}; "
                    f"refusing to switch to {lo}..{hi} (use another db)"
                )
            con.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [("scale_min", str(lo)), ("scale_max", str(hi))]
            )
            con.execute("COMMIT")

    # ------------------------------------------------------------------ import
    def import_items(self, items: Iterable[TaskItem], source: str = "") -> ImportStats:
        """Add a task's items (idempotent) and every A/B pair of distinct completions per prompt."""
        items = list(items)
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                existing = {r[0]: r[1:] for r in con.execute("SELECT item_id, prompt, completion, model FROM items")}
                n0 = len(existing)
                new = []
                for it in items:
                    old = existing.get(it.item_id)
                    if old is not None and tuple(old) != (it.prompt, it.completion, it.model):
                        raise StoreError(
                            f"{self.path}: item {it.item_id!r} in {source or 'the task'} differs from the stored one "
                            "(the task file changed under this db; use a new db)"
                        )
                    if old is None:
                        existing[it.item_id] = (it.prompt, it.completion, it.model)
                        new.append((it.item_id, it.prompt, it.completion, it.model, it.sample_index, n0 + len(new)))
                con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", new)
                p0 = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
                con.execute(
                    "INSERT OR IGNORE INTO pairs(item_lo, item_hi) SELECT a.item_id, b.item_id FROM items a "
                    "JOIN items b ON a.prompt = b.prompt AND a.item_id < b.item_id AND a.completion != b.completion "
                    "ORDER BY a.ord, b.ord"
                )
                p1 = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
                if source:
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('task', ?)", (source,))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return ImportStats(new_items=len(new), new_pairs=p1 - p0, total_items=len(existing), total_pairs=p1)

    # ------------------------------------------------------------------ serving
    def item(self, item_id: str) -> Item | None:
        with self.connect() as con:
            row = con.execute(
                "SELECT item_id, prompt, completion, model FROM items WHERE item_id=?", (item_id,)
            ).fetchone()
        return Item(*row) if row else None

    def next_item(self, rater: str) -> Item | None:
        """The least-rated item this rater has not answered (ties in a per-rater random order)."""
        with self.connect() as con:
            row = con.execute(
                "SELECT item_id, prompt, completion, model FROM items i WHERE NOT EXISTS "
                "(SELECT 1 FROM scores s WHERE s.item_id = i.item_id AND s.rater = ?1) ORDER BY "
                "(SELECT COUNT(*) FROM scores c WHERE c.item_id = i.item_id AND c.score IS NOT NULL), "
                "rk(?1, i.item_id) "
                "LIMIT 1",
                (rater,),
            ).fetchone()
        return Item(*row) if row else None

    def pair(self, pair_id: int, rater: str) -> Pair | None:
        """A pair as this rater sees it (left/right in a fixed per-rater random order)."""
        with self.connect() as con:
            row = con.execute("SELECT item_lo, item_hi FROM pairs WHERE pair_id=?", (pair_id,)).fetchone()
        if row is None:
            return None
        lo, hi = self.item(row[0]), self.item(row[1])
        left, right = (lo, hi) if _rank(rater, str(pair_id)) % 2 == 0 else (hi, lo)
        return Pair(pair_id=pair_id, prompt=lo.prompt, left=left, right=right)

    def next_pair(self, rater: str) -> Pair | None:
        """The least-judged pair this rater has not answered."""
        with self.connect() as con:
            row = con.execute(
                "SELECT pair_id FROM pairs p WHERE NOT EXISTS "
                "(SELECT 1 FROM comparisons s WHERE s.pair_id = p.pair_id AND s.rater = ?1) ORDER BY "
                "(SELECT COUNT(*) FROM comparisons c WHERE c.pair_id = p.pair_id AND c.choice != 'skip'), "
                "rk(?1, CAST(p.pair_id AS TEXT)) LIMIT 1",
                (rater,),
            ).fetchone()
        return self.pair(row[0], rater) if row else None

    # ------------------------------------------------------------------ writes
    def add_score(self, rater: str, item_id: str, score: float | None) -> int:
        """Store one score (None = skipped); returns the row id."""
        rater = check_rater(rater)
        if score is not None:
            lo, hi = self.scale
            if not (lo <= score <= hi) or score != int(score):
                raise InvalidRating(f"score must be an integer from {lo} to {hi}, got {score!r}")
        with self.connect() as con:
            try:
                cur = con.execute(
                    "INSERT INTO scores(rater, item_id, score, created) SELECT ?, ?, ?, ? "
                    "WHERE EXISTS (SELECT 1 FROM items WHERE item_id = ?)",
                    (rater, item_id, score, time.time(), item_id),
                )
            except sqlite3.IntegrityError:
                raise DuplicateRating(f"rater {rater!r} has already rated item {item_id!r}") from None
        if cur.rowcount != 1:
            raise UnknownTarget(f"no item {item_id!r} in this task")
        return cur.lastrowid

    def add_comparison(self, rater: str, pair_id: int, choice: Literal["left", "right", "tie", "skip"]) -> int:
        """Store one A/B judgement of a pair, as shown to this rater; returns the row id."""
        rater = check_rater(rater)
        if choice not in CHOICES:
            raise InvalidRating(f"choice must be one of {list(CHOICES)}, got {choice!r}")
        pair = self.pair(pair_id, rater)
        if pair is None:
            raise UnknownTarget(f"no pair {pair_id!r} in this task")
        with self.connect() as con:
            try:
                cur = con.execute(
                    "INSERT INTO comparisons(rater, pair_id, left_id, right_id, choice, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (rater, pair_id, pair.left.item_id, pair.right.item_id, choice, time.time()),
                )
            except sqlite3.IntegrityError:
                raise DuplicateRating(f"rater {rater!r} has already judged pair {pair_id}") from None
        return cur.lastrowid

    # ------------------------------------------------------------------ reads
    def progress(self, rater: str, mode: Literal["score", "ab"]) -> Progress:
        table, total, skip = (
            ("scores", "items", "score IS NOT NULL")
            if mode == "score"
            else ("comparisons", "pairs", "choice != 'skip'")
        )
        with self.connect() as con:
            done = con.execute(f"SELECT COUNT(*) FROM {table} WHERE rater=?", (rater,)).fetchone()[0]
            n = con.execute(f"SELECT COUNT(*) FROM {total}").fetchone()[0]
            ratings = con.execute(f"SELECT COUNT(*) FROM {table} WHERE {skip}").fetchone()[0]
            raters = con.execute(f"SELECT COUNT(DISTINCT rater) FROM {table}").fetchone()[0]
        return Progress(done=done, total=n, ratings=ratings, raters=raters)

    def raters(self) -> list[str]:
        with self.connect() as con:
            rows = con.execute("SELECT rater FROM scores UNION SELECT rater FROM comparisons ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def score_rows(self) -> list[dict]:
        """Every stored score (skips have score None), oldest first."""
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT s.item_id, i.prompt, i.completion, i.model, s.score, s.rater, s.created "
                "FROM scores s JOIN items i USING (item_id) ORDER BY s.id"
            ).fetchall()
        return [dict(r) for r in rows]

    def comparison_rows(self) -> list[dict]:
        """Every stored A/B judgement with both items, oldest first."""
        with self.connect() as con:
            con.row_factory = sqlite3.Row
            rows = con.execute(
                "SELECT c.rater, c.pair_id, c.choice, c.created, l.prompt AS prompt, "
                "l.item_id AS left_id, l.completion AS left_completion, l.model AS left_model, "
                "r.item_id AS right_id, r.completion AS right_completion, r.model AS right_model "
                "FROM comparisons c JOIN items l ON l.item_id = c.left_id JOIN items r ON r.item_id = c.right_id "
                "ORDER BY c.id"
            ).fetchall()
        return [dict(r) for r in rows]

    def items(self) -> list[Item]:
        with self.connect() as con:
            return [Item(*r) for r in con.execute("SELECT item_id, prompt, completion, model FROM items ORDER BY ord")]
