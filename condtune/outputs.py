"""Where a command writes, checked before any work: never onto an input, never over a stranger's
files, always somewhere writable, and one run at a time.

Every command calls :func:`claim_output` on each output (a file or a folder) right after parsing its
settings. It

1. resolves the output and every input path of the settings (symlinks and ``.`` included; inputs are
   found by value: any setting whose value names an existing file or folder, plus the ``--config``
   file) and refuses an output that equals, contains or lies inside an input;
2. refuses an output folder that is neither empty nor a previous output of the same command
   (``marks``: files only such an output holds), unless ``overwrite``; a folder the command replaces
   whole (``writes``: the names it writes) is refused if it holds anything else;
3. checks that the output's location is writable, with room for ``need_bytes`` where that is known;
4. takes the output's lock (:func:`lock`): a second run into an output in use is refused, naming the
   process that holds it; a lock left by a dead process is taken over.

Each refusal is a :class:`~condtune.config.ConfigError` naming the setting: one line, exit 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from condtune import configs
from condtune.config import ConfigError
from condtune.config_argv import split_argv
from condtune.io import user_entries

LOCK_SUFFIX = ".condtune-lock"
"""a lock is the hidden file ``.<name>.condtune-lock`` beside the output it guards"""

_held: dict[Path, Path] = {}  # output -> its lock file, taken by this process


# ----------------------------------------------------------------------------- inputs and aliasing


def resolved(path: str | Path) -> Path:
    """``path`` made absolute, ``~``, ``.``, ``..`` and symlinks resolved (a path that does not exist yet
    resolves through its existing ancestors)."""
    return Path(os.path.expanduser(str(path))).resolve()


def path_settings(cfg: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    """(dotted setting, value) for every text or path setting of a config (nested ones included), and each
    item of a list of them."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from path_settings(value, key + ".")
        elif isinstance(value, (str, Path)):
            yield key, str(value)
        elif isinstance(value, (list, tuple)):
            yield from ((f"{key}[{i}]", str(v)) for i, v in enumerate(value) if isinstance(v, (str, Path)))


def inputs_of(cfg: Any, argv: Sequence[str] = (), outputs: Iterable[str] = ()) -> dict[str, Path]:
    """The settings of ``cfg`` (but ``outputs``) whose values name an existing file or folder, and the
    ``--config`` files of ``argv``: {setting: resolved path}."""
    config = split_argv(type(cfg), argv)[0] if argv else None  # the command line as parse() read it
    path = configs.resolve(config) if config and (not configs.is_name(config) or config in configs.names()) else None
    found = {f"--config {config}": resolved(path)} if path and path.exists() else {}
    skip = set(outputs)
    for key, value in path_settings(cfg):
        if key in skip or not value.strip():
            continue
        p = Path(os.path.expanduser(value))
        if p.exists():
            found[f"{key}={value}"] = p.resolve()
    return found


def check_not_alias(key: str, out: str | Path, inputs: Mapping[str, Path]) -> None:
    """``out`` (setting ``key``) must not be, hold or lie inside any of ``inputs``."""
    o = resolved(out)
    for name, i in inputs.items():
        if o == i or (o.exists() and os.path.samefile(o, i)):  # samefile: a hard link is the same file too
            how = "is the input"
        elif o in i.parents:
            how = "holds the input"
        elif i in o.parents:
            how = "lies inside the input"
        else:
            continue
        raise ConfigError(f"{key}={out}: {how} {name}; writing there would destroy it: choose another {key}=")


# ----------------------------------------------------------------------------- what may be replaced


def check_folder_kind(
    key: str,
    folder: str | Path,
    *,
    what: str,
    marks: Sequence[str] = (),
    writes: Sequence[str] | None = None,
    overwrite: bool = False,
    overwrite_setting: str | None = "overwrite=true",
) -> None:
    """An output folder must be absent, empty, or a previous output of this kind: one holding any of
    ``marks`` (a run folder the command writes into) or, when the command replaces the folder whole,
    nothing but the names in ``writes``. Anything else is refused unless ``overwrite`` (the error names
    ``overwrite_setting``, the command's way to ask for it, where it has one)."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{key}={folder}: is a file; {key}= takes a folder")
    if not p.is_dir() or overwrite:
        return
    names = user_entries(p)
    if not names:
        return
    if writes is not None:
        foreign = [n for n in names if n not in writes]
        if not foreign:
            return
    elif any((p / m).exists() for m in marks):
        return
    else:
        foreign = names
    raise ConfigError(
        f"{key}={folder}: holds files that are not {what} ({', '.join(foreign[:5])}"
        f"{', ...' if len(foreign) > 5 else ''}); choose an empty or new {key}="
        + (f", or {overwrite_setting} to replace it" if overwrite_setting else "")
    )


# ----------------------------------------------------------------------------- the machine


def check_writable(key: str, out: str | Path, need_bytes: int = 0) -> None:
    """The nearest existing folder of ``out`` takes a new file (a read-only disk or a folder without
    write permission fails here, before the slow work), with ``need_bytes`` free where known."""
    o = resolved(out)
    where = o if o.is_dir() else o.parent
    while not where.exists():
        where = where.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".condtune-probe.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{key}={out}: cannot write in {where} ({exc.strerror or exc})") from None
    if need_bytes > 0:
        free = shutil.disk_usage(where).free
        if free < need_bytes:
            raise ConfigError(
                f"{key}={out}: {where} has {free / 2**30:.2f} GiB free; this run writes about "
                f"{need_bytes / 2**30:.2f} GiB: free some space or choose another {key}="
            )


def size_of(path: str | Path) -> int:
    """Bytes of a file or of every file under a folder (0 for what does not exist)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


# ----------------------------------------------------------------------------- one run at a time


def lock_path(out: str | Path) -> Path:
    o = resolved(out)
    return o.parent / f".{o.name}{LOCK_SUFFIX}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def lock(key: str, out: str | Path, job: str) -> None:
    """Take the lock of ``out`` for this process until :func:`release` (or its exit). A lock held by a
    live process is a :class:`ConfigError` naming it; one left by a dead process on this host (or an
    unreadable one) is taken over. Under a multi-process launch only rank 0 locks."""
    if os.environ.get("RANK", "0") not in ("", "0") or os.environ.get("LOCAL_RANK", "0") not in ("", "0"):
        return
    o = resolved(out)
    if o in _held:
        return
    path = lock_path(o)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "job": job, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder and holder.get("pid") == os.getpid() and holder.get("host") == me["host"]:
                break
            if holder and (holder.get("host") != me["host"] or _alive(int(holder.get("pid", 0)))):
                raise ConfigError(
                    f"{key}={out}: in use by condtune {holder.get('job')} (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, since {holder.get('since')}); wait for it to end or choose another "
                    f"{key}= (if that run is gone, delete {path})"
                ) from None
            path.unlink(missing_ok=True)  # a dead process's (or a half-written) lock: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    _held[o] = path


def release(out: str | Path | None = None) -> None:
    """Give back the lock of ``out`` (every lock this process holds, when None)."""
    for o in [resolved(out)] if out is not None else list(_held):
        path = _held.pop(o, None)
        if path is not None:
            holder = _holder(path)
            if holder and holder.get("pid") == os.getpid():
                path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- all of it


def claim_output(
    cfg: Any,
    key: str,
    *,
    job: str,
    argv: Sequence[str] = (),
    folder: bool = True,
    what: str = "",
    marks: Sequence[str] = (),
    writes: Sequence[str] | None = None,
    overwrite: bool = False,
    overwrite_setting: str | None = "overwrite=true",
    need_bytes: int = 0,
    outputs: Sequence[str] = (),
    beside: Sequence[str | Path] = (),
) -> Path:
    """Check and lock the output setting ``key`` of ``cfg`` (a folder, or a file when not ``folder``)
    before any work: not an input (``outputs`` names the command's other output settings, which are
    not inputs; ``beside``: files the command writes next to it, such as a card), of the right kind,
    writable, and not in use. Returns its path."""
    value = getattr_dotted(cfg, key)
    if value is None or not str(value).strip():
        raise ConfigError(f"{key}: give an output path")
    out = Path(os.path.expanduser(str(value)))
    here = resolved(".")
    if resolved(out) == here or resolved(out) in here.parents:
        raise ConfigError(f"{key}={out}: is the current folder or holds it; choose a new {key}=")
    inputs = inputs_of(cfg, argv, outputs=(key, *outputs))
    for path in (out, *beside):
        check_not_alias(key, path, inputs)
    if folder:
        kind = dict(marks=marks, writes=writes, overwrite=overwrite, overwrite_setting=overwrite_setting)
        check_folder_kind(key, out, what=what or f"a {job} output", **kind)
    elif out.is_dir():
        raise ConfigError(f"{key}={out}: is a folder; {key}= takes {what or 'a file'}")
    check_writable(key, out, need_bytes)
    lock(key, out, job)
    return out


def getattr_dotted(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
