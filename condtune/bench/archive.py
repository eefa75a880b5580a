"""A benchmark's results that outlive the machine they were made on.

A full benchmark takes many hours; it runs in pieces (a seed, a method), and the machine that ran
one piece may be gone before the next. ``out/`` holds heavy things (scorers, the base policy, run
folders with weights) and the small things a report and a resume need. The archive is a folder of
only the small things, meant to be kept (committed, copied); :func:`pull` brings them into a fresh
``out/`` before a piece runs and :func:`push` adds what the piece made:

* ``results.jsonl`` and ``samples/``: every evaluated result and its per-sample table;
* ``run_identity.json``, ``prompts.json``: the protocol (prompts, the raters' scores of the probe
  texts), so a piece judged by other raters or prompts is refused, never pooled;
* ``ceiling_<method>.json``: the data ceilings;
* each trained run's ``run.json`` and ``checkpoints.json``: what the run was (a changed setting is
  refused) and that its training finished, with its costs and weights' digests (its weights stay
  behind: a decode still missing retrains it, checked against those digests, ``runner.retrain``).

The runner pushes after every evaluated result, so a piece cut off mid-way loses no finished decode.

Neither side's files are ever overwritten by the other's: results are merged by their key
(method, setting, seed, checkpoint, decode), other files are copied where they are missing, and a
file present on both sides with other contents stops the copy with an error naming it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from condtune.bench import store
from condtune.config import ConfigError
from condtune.io import atomic_path, write_jsonl

log = logging.getLogger("condtune.bench")

RUN_FILES = ("run.json", "checkpoints.json")
"""a finished run's records (its identity; its checkpoints, which mark it finished)"""


def small_files(root: Path) -> list[Path]:
    """The archived files under ``root`` other than results.jsonl, relative to it: the protocol,
    the ceilings, the per-sample tables, and the records of finished runs."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for name in ("run_identity.json", "prompts.json", "protocol.json") if (p := root / name).is_file()]
    found += sorted(root.glob("ceiling_*.json"))
    found += sorted(p for p in (root / "samples").rglob("*") if p.is_file() and not p.name.startswith("."))
    for done in sorted(root.glob("seed_*/*/*/checkpoints.json")):  # a run is archived once it finished
        found += [done.parent / name for name in RUN_FILES if (done.parent / name).is_file()]
    return [p.relative_to(root) for p in found]


def _copy_missing(src: Path, dst: Path) -> int:
    """Copy the small files of ``src`` that ``dst`` lacks; the same file on both sides must agree."""
    copied = 0
    for rel in small_files(src):
        a, b = src / rel, dst / rel
        if b.exists():
            if a.read_bytes() != b.read_bytes() and not _same_json(a, b):
                raise ConfigError(
                    f"{b} and {a} differ: the archive and output_dir= hold different results under one name; "
                    "use another output_dir= (or archive=), or remove the one that is wrong"
                )
            continue
        with atomic_path(b, suffix=rel.suffix) as tmp:
            shutil.copyfile(a, tmp)
        copied += 1
    return copied


def _same_json(a: Path, b: Path) -> bool:
    if a.suffix != ".json":
        return False
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except ValueError:
        return False


def _merge_results(src: Path, dst: Path) -> int:
    """Append to dst's results.jsonl the lines of src's whose key dst lacks; the number added."""
    have = {store.key(r): r for r in store.read_results(dst)}
    new = [r for r in store.read_results(src) if store.key(r) not in have]
    if new:
        write_jsonl(store.results_path(dst), [*have.values(), *new])
    return len(new)


def pull(archive: str | Path, out: str | Path) -> None:
    """Bring an archive's results and records into ``out`` (nothing in ``out`` is overwritten).
    The samples go first and the results lines last, so a line always has its table."""
    archive, out = Path(archive), Path(out)
    if not archive.exists():
        log.info("archive %s: none yet (this run starts it)", archive)
        return
    if not archive.is_dir():
        raise ConfigError(f"archive={archive}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    files = _copy_missing(archive, out)
    lines = _merge_results(archive, out)
    log.info("archive %s: %d results and %d files brought into %s", archive, lines, files, out)


def push(out: str | Path, archive: str | Path) -> None:
    """Add what ``out`` holds and the archive lacks (samples and records first, results last)."""
    out, archive = Path(out), Path(archive)
    archive.mkdir(parents=True, exist_ok=True)
    files = _copy_missing(out, archive)
    lines = _merge_results(out, archive)
    if files or lines:
        log.info("archive %s: %d results and %d files added", archive, lines, files)
