"""Prompts: read from a file (text lines, JSONL or a JSON list), or the default list a command
uses when it is given none."""

from __future__ import annotations

import json
from pathlib import Path

from condtune.errors import DataError
from condtune.io import read_jsonl, read_text_lines

DEFAULT_PROMPTS = [
    "Movie review:",
    "Product review:",
    "My review of this film:",
    "Customer review:",
    "What I thought of the movie:",
    "Review of the restaurant:",
    "Book review:",
    "My opinion of this product:",
    "Tweet:",
    "The critics said:",
    "Hotel review:",
    "Album review:",
    "Here is my honest review:",
    "Review of the new phone:",
    "Thoughts on the show:",
    "Game review:",
]
"""what a command that prompts the policy (ppo, rloo, best-of-n) uses when given no prompts file"""


def prompts_or_default(path: str | Path | None) -> list[str]:
    """The prompts of ``path`` (see :func:`load_prompts`), or :data:`DEFAULT_PROMPTS` when it is empty."""
    return load_prompts(path) if path else list(DEFAULT_PROMPTS)


def load_prompts(path: str | Path) -> list[str]:
    """Prompts, one per non-empty line of a text file (a literal ``\\n`` stands for a newline),
    or one per record of a ``.jsonl`` file / ``.json`` list of objects, taken from the record's
    ``prompt`` field or, when it has none, its ``text`` field."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, not a prompts file")
    if not path.is_file():
        raise DataError(path, "prompts file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        prompts = [_prompt_field(path, i, rec) for i, rec in enumerate(read_jsonl(path), start=1)]
    elif suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError:
            raise DataError(path, "not UTF-8 text; save it as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise DataError(path, f"not valid JSON ({exc.msg})") from None
        if not isinstance(records, list):
            raise DataError(path, f"expected a JSON list of objects, got {type(records).__name__}")
        prompts = [_prompt_field(path, i, rec) for i, rec in enumerate(records, start=1)]
    else:
        prompts = [line.replace("\\n", "\n") for line in read_text_lines(path) if line.strip()]
    if not prompts:
        raise DataError(path, "no prompts found")
    return prompts


def _prompt_field(path: Path, row: int, record: object) -> str:
    key = "text" if isinstance(record, dict) and "prompt" not in record and "text" in record else "prompt"
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, str):
        raise DataError(path, "expected an object with a string 'prompt' (or 'text') field", row=row, column=key)
    return value
