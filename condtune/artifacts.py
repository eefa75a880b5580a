"""Checks of saved folders (a scorer, a policy, any local model directory) before they are loaded.

A missing, truncated or damaged file is an :class:`ArtifactError` that names it, never a
traceback from deep inside transformers or safetensors, and never a silent stand-in (with its
tokenizer files gone, transformers builds a 5-token placeholder tokenizer from the config, and
every text then scores the same).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

from condtune.assets import resolve_model
from condtune.errors import ArtifactError, ArtifactMissing

TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
"""a tokenizer needs at least one of these (its vocabulary)"""
JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def read_json_object(path: str | Path, what: str = "file") -> dict:
    """A JSON object from ``path``; missing, not JSON (e.g. truncated) or not an object is an error."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactMissing(path, f"{what} missing")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ArtifactError(path, f"{what} is not UTF-8 text (damaged?)") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(
            path, f"{what} is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}): truncated or damaged?"
        ) from None
    if not isinstance(obj, dict):
        raise ArtifactError(path, f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def check_safetensors(path: str | Path) -> None:
    """The header parses and the file is exactly as long as the header says (a cut file is not)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactMissing(path, "weights file missing")
    size = path.stat().st_size
    bad = f"truncated or damaged safetensors file ({size} bytes)"
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ArtifactError(path, bad)
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise ArtifactError(path, bad)
        try:
            header = json.loads(fh.read(n))
            end = max(
                (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ArtifactError(path, f"{bad}: unreadable header") from None
    if 8 + n + end != size:
        raise ArtifactError(path, f"truncated or damaged safetensors file: the header describes {8 + n + end} bytes")


def check_model_dir(path: str | Path, what: str = "model folder", tokenizer: bool = True) -> None:
    """A transformers folder with its config, complete weights and (``tokenizer``) tokenizer files."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactMissing(path, f"{what} missing")
    read_json_object(path / "config.json", f"{what}'s config")
    weights = next((path / w for w in WEIGHT_FILES if (path / w).is_file()), None)
    if weights is None:
        raise ArtifactMissing(path, f"{what} has no weights (none of {list(WEIGHT_FILES)})")
    if weights.name == "model.safetensors":
        check_safetensors(weights)
    elif weights.name == "model.safetensors.index.json":
        index = read_json_object(weights, "weights index")
        for shard in sorted(set((index.get("weight_map") or {}).values())):
            check_safetensors(path / shard)
    if tokenizer:
        if not any((path / f).is_file() for f in TOKENIZER_FILES):
            raise ArtifactMissing(
                path, f"{what} has no tokenizer files (none of {list(TOKENIZER_FILES)}); it cannot read text"
            )
        for name in JSON_FILES[1:]:
            if (path / name).is_file():
                read_json_object(path / name, "tokenizer file")


def check_model_ref(name_or_path: str | Path, what: str = "model folder", tokenizer: bool = True) -> str:
    """What ``name_or_path`` (an embedded-default name, an HF id or a local folder) resolves to,
    checked before anything loads: a local folder with its files (:func:`check_model_dir`), and a
    path that names no folder (a file, or nothing) an error naming it. An HF id is left to the hub."""
    path = resolve_model(name_or_path)
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "adapter_config.json").exists():  # a PEFT adapter folder holds no full model
            check_model_dir(p, what, tokenizer)
        return str(p)
    if p.exists():
        raise ArtifactError(p, f"is a file; expected a {what} (or an HF model id)")
    if str(path).startswith(("/", ".", "~")) or str(path).count("/") > 1 or "\\" in str(path):
        raise ArtifactMissing(p, f"{what} not found")
    return str(path)


@contextlib.contextmanager
def loading(path: str | Path, what: str = "model folder") -> Iterator[None]:
    """Any error while loading a checked folder (one the checks above cannot see) as an ArtifactError."""
    from safetensors import SafetensorError

    try:
        yield
    except ArtifactError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(path, f"cannot load the {what}: {first}") from None
