"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or a validation error never leaves a half-written output, and an existing file
at the target stays untouched until the new one is complete. The output gets the mode a plain
``open()`` / ``mkdir()`` would give it (the user's umask, or the replaced file's own mode), not
the private 0600 / 0700 of the temporary it was written as.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from condtune.errors import DataError


def current_umask() -> int:
    """The process's umask (read without changing it where /proc says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only for a moment)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The mode ``open(path, 'w')`` (0666) or ``mkdir`` (0777) gives a new file or folder under the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def _mode_of(path: Path, directory: bool) -> int:
    """``path``'s current permission bits, or the default for a new one."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return default_mode(directory)


def _walk(root: Path) -> Iterator[tuple[Path, bool]]:
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            yield Path(dirpath) / d, True
        for f in filenames:
            yield Path(dirpath) / f, False


def fix_modes(root: str | Path, keep: dict[Path, int] | None = None) -> None:
    """Give everything under ``root`` (not ``root`` itself) the mode in ``keep``, or the umask default:
    savers that write through private temporaries (safetensors, tempfile) leave 0600 files otherwise."""
    keep = keep or {}
    defaults = {False: default_mode(False), True: default_mode(True)}
    for path, is_dir in _walk(Path(root)):
        if path.is_symlink():
            continue
        mode = keep.get(path, defaults[is_dir])
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)


@contextlib.contextmanager
def umask_modes(root: str | Path) -> Iterator[Path]:
    """Files written under ``root`` inside the block end with the modes a plain ``open()`` would give
    them: a replaced file keeps its old mode, a new one gets the umask's."""
    root = Path(root)
    before = {p: stat.S_IMODE(p.stat().st_mode) for p, _ in _walk(root)} if root.is_dir() else {}
    yield root
    if root.is_dir():
        fix_modes(root, before)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _mode_of(target, directory=False))
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


OWN_HIDDEN = (".relabel", ".condtune")
"""hidden names condtune keeps in an output folder for its own state (a user's dotfiles are not among them)"""


def is_own(name: str) -> bool:
    """An entry of an output folder that condtune writes for itself: its state, or an atomic temporary."""
    return name.startswith(OWN_HIDDEN) or (name.startswith(".") and name.endswith(".tmp"))


def user_entries(folder: str | Path) -> list[str]:
    """The names in ``folder`` that are not condtune's own state or temporaries, sorted."""
    return sorted(p.name for p in Path(folder).iterdir() if not is_own(p.name))


@contextlib.contextmanager
def atomic_dir(target: str | Path, replaces: Iterable[str] | None = None) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; swap it into place on success.

    With ``replaces`` (the names a previous output of the same kind may hold beside those written now),
    an existing ``target`` holding anything else (a user's file, another tool's output) is never
    deleted: the swap is refused with a :class:`FileExistsError` naming what it holds, and the new
    output is discarded."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if replaces is not None and target.is_dir():
            allowed = {p.name for p in tmp.iterdir()} | set(replaces)
            foreign = [n for n in user_entries(target) if n not in allowed]
            if foreign:
                raise FileExistsError(
                    errno.EEXIST,
                    f"holds files this output does not write ({', '.join(foreign[:5])}); nothing was replaced",
                    str(target),
                )
        fix_modes(tmp)
        os.chmod(tmp, _mode_of(target, directory=True))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    with atomic_path(path) as tmp, tmp.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")
    return Path(path)


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a file that is not valid JSON (cut by a kill, damaged) is a
    :class:`condtune.errors.DataError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text (damaged?)") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            path, f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}): truncated or damaged?"
        ) from None


def read_jsonl(path: str | Path, missing_ok: bool = False) -> list[dict]:
    """The JSON objects of a JSONL file, one per non-blank line.

    A missing file is ``[]`` when ``missing_ok``; otherwise, like a line that is not valid
    JSON or not an object, it is a :class:`condtune.errors.DataError` naming the file and row
    (the 1-based line number).
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise DataError(path, "file not found")
    records = (jsonl_record(path, i, line) for i, line in enumerate(read_text_lines(path), start=1))
    return [r for r in records if r is not None]


def unique_keys(path: str | Path, row: int | None = None):
    """A ``json.loads`` object hook that refuses a record giving a key twice (json would keep the last
    one): a :class:`condtune.errors.DataError` naming the file, the row and the key."""

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise DataError(
                    path, "a record gives this key twice (JSON would keep only the last one)", row=row, column=k
                )
            out[k] = v
        return out

    return hook


def jsonl_record(path: Path, row: int, line: str) -> dict | None:
    """One JSONL line as an object (None for a blank line); not JSON or not an object is a
    :class:`condtune.errors.DataError` naming the file and row."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line, object_pairs_hook=unique_keys(path, row))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", row=row) from None
    if not isinstance(obj, dict):
        raise DataError(path, "each line must be a JSON object", row=row)
    return obj


def decode_line(path: str | Path, row: int, raw: bytes) -> str:
    """Line ``row`` (1-based) of a UTF-8 text file (the first drops a BOM); bytes that are not UTF-8
    are a :class:`condtune.errors.DataError` naming the file, the row and the byte."""
    try:
        return raw.decode("utf-8-sig" if row == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            path,
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x}, the line's byte {exc.start + 1}); save it as UTF-8",
            row=row,
        ) from None


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (a BOM is dropped); a line that is not UTF-8 is a
    :class:`condtune.errors.DataError` naming the file and row (the 1-based line number)."""
    return [decode_line(path, i, raw) for i, raw in enumerate(Path(path).read_bytes().splitlines(), start=1)]
