"""Rating task files: the completions people are asked to rate.

A task file is JSONL, one row per completion::

    {"item_id": "3f2a...", "prompt": "...", "completion": "...", "model": "smollm2-135m", "sample_index": 0}

and a sibling card (``tasks.card.json`` beside ``tasks.jsonl``) says how it was made: the
model(s), sampling settings, n, seed, and the score scale raters use.
Errors name the file, the line (row) and the field (column). A row is refused when a rater could
not rate it or the page could not carry it: a blank completion (empty or whitespace only), a blank
model name, an item id that is not 1-128 characters of ``A-Z a-z 0-9 . _ : -`` starting with a letter
or digit (ids go into URLs, HTML forms and file names), or an id already on an earlier row.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from condtune.io import read_json, write_json, write_jsonl

FIELDS = ("item_id", "prompt", "completion", "model", "sample_index")
DEFAULT_SCALE = (-4, 4)
ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""a safe item id: in a URL, an HTML attribute and a file name as it is (what :func:`make_item_id` makes)"""


class TaskError(ValueError):
    """A bad task file; the message names the file, row and column."""

    def __init__(self, path: str | Path, message: str, *, row: int | None = None, column: str | None = None):
        self.path, self.row, self.column = str(path), row, column
        where = str(path) + (f", row {row}" if row is not None else "") + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class TaskItem:
    """One completion to rate."""

    item_id: str
    prompt: str
    completion: str
    model: str
    sample_index: int


def make_item_id(model: str, prompt: str, *, sample_index: int, completion: str) -> str:
    """Stable id: the same (model, prompt, index, text) always gets the same id, across files."""
    key = json.dumps([model, prompt, sample_index, completion], ensure_ascii=False)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def card_path(task_path: str | Path) -> Path:
    """``runs/x/tasks.jsonl`` -> ``runs/x/tasks.card.json``."""
    p = Path(task_path)
    return p.with_name(p.name[: -len(p.suffix)] + ".card.json" if p.suffix else p.name + ".card.json")


def _json_row(path: Path, row: int, line: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TaskError(path, f"not valid JSON at character {exc.colno}: {exc.msg}", row=row) from None
    if not isinstance(obj, dict):
        raise TaskError(path, f"expected a JSON object, got {type(obj).__name__}", row=row)
    return obj


def _check_row(path: Path, row: int, obj: dict) -> TaskItem:
    for name in FIELDS:
        if name not in obj:
            raise TaskError(path, f"missing field (expected fields {list(FIELDS)})", row=row, column=name)
    for name in ("item_id", "prompt", "completion", "model"):
        if not isinstance(obj[name], str):
            raise TaskError(
                path, f"expected a string, got {type(obj[name]).__name__} {obj[name]!r}", row=row, column=name
            )
    item_id = obj["item_id"]
    if not ITEM_ID.fullmatch(item_id):
        shown = repr(item_id) if len(item_id) <= 40 else f"{item_id[:40]!r}... ({len(item_id)} characters)"
        raise TaskError(
            path,
            f"unsafe item_id {shown}: use 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or "
            "digit (ids go into URLs, HTML and file names)",
            row=row,
            column="item_id",
        )
    if not obj["completion"].strip():
        raise TaskError(
            path,
            "empty completion (blank or whitespace only): nothing to rate; drop the row",
            row=row,
            column="completion",
        )
    if not obj["model"].strip():
        raise TaskError(path, "empty model name: say which model wrote the completion", row=row, column="model")
    idx = obj["sample_index"]
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
        raise TaskError(path, f"expected a non-negative integer, got {idx!r}", row=row, column="sample_index")
    return TaskItem(**{k: obj[k] for k in FIELDS})


def load_task(path: str | Path) -> list[TaskItem]:
    """Read and validate a task file (unique item ids, all fields present and typed)."""
    path = Path(path)
    if path.is_dir():
        raise TaskError(path, "is a folder, not a task file (a .jsonl from `condtune sample`)")
    if not path.is_file():
        raise TaskError(path, "task file not found")
    items: list[TaskItem] = []
    seen: dict[str, int] = {}
    for row, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        item = _check_row(path, row, _json_row(path, row, line))
        if item.item_id in seen:
            raise TaskError(
                path,
                f"duplicate item_id {item.item_id!r} (first on row {seen[item.item_id]})",
                row=row,
                column="item_id",
            )
        seen[item.item_id] = row
        items.append(item)
    if not items:
        raise TaskError(path, "no items")
    return items


def _text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; bytes that are not UTF-8 are an error naming the row."""
    lines = path.read_bytes().splitlines()
    out = []
    for row, raw in enumerate(lines, start=1):
        try:
            out.append(raw.decode("utf-8-sig" if row == 1 else "utf-8"))
        except UnicodeDecodeError as exc:
            raise TaskError(
                path,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x}, the line's byte {exc.start + 1}); save it as UTF-8",
                row=row,
            ) from None
    return out


def load_card(task_path: str | Path) -> dict:
    """The task's card, or ``{}`` when there is none (a hand-made task file)."""
    p = card_path(task_path)
    if not p.is_file():
        return {}
    try:
        card = read_json(p)
    except ValueError as exc:  # not JSON / not UTF-8: the DataError names the card
        raise TaskError(p, str(exc).removeprefix(f"{p}: ")) from None
    if not isinstance(card, dict):
        raise TaskError(p, f"expected a JSON object, got {type(card).__name__}")
    scale = card.get("scale") or {}
    if not isinstance(scale, dict) or any(
        k in scale and (isinstance(scale[k], bool) or not isinstance(scale[k], int)) for k in ("min", "max")
    ):
        raise TaskError(p, f"scale must be {{'min': integer, 'max': integer}}, got {scale!r}", column="scale")
    return card


def card_scale(card: dict) -> tuple[int, int]:
    scale = card.get("scale") or {}
    return int(scale.get("min", DEFAULT_SCALE[0])), int(scale.get("max", DEFAULT_SCALE[1]))


def write_task(path: str | Path, items: Iterable[TaskItem], card: dict) -> tuple[Path, Path]:
    """Write the task file and its card, each atomically."""
    items = list(items)
    write_jsonl(path, (asdict(i) for i in items))
    return Path(path), write_json(card_path(path), card)
