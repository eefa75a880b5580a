"""``condtune <job> [--config FILE.yaml] [key=value | --key value ...]``

Each job is a recipe module under ``recipes/`` with a ``main(argv)``; this file only
dispatches. ``condtune <job> --help`` prints the job's config fields and defaults.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys

from condtune.errors import ConfigError, DataError
from condtune.outputs import release

JOBS: dict[str, tuple[str, str]] = {
    "quickstart": ("recipes.quickstart", "the whole chain on the embedded defaults"),
    "fetch": ("recipes.fetch_assets", "fetch and cache the embedded defaults (model, scorer backbone, ratings)"),
    "scorer train": ("recipes.scorer_train", "train a scorer from pointwise ratings or pairwise preferences"),
    "scorer eval": ("recipes.scorer_eval", "evaluate a saved scorer on a ratings file"),
    "relabel": ("recipes.relabel", "tag a dataset with quantised scorer bins (and column tags)"),
    "train": ("recipes.train_policy", "conditional SFT: tags before the answer, loss on the answer"),
    "generate": ("recipes.generate", "generate at a requested score / tags"),
    "ppo": ("recipes.ppo", "PPO baseline with a KL-penalised reward"),
    "dpo": ("recipes.dpo", "DPO baseline (trl) on preference pairs, or pairs built from ratings"),
    "rloo": ("recipes.rloo", "RLOO baseline (trl) against a scorer, KL to the base through beta"),
    "best-of-n": ("recipes.best_of_n", "best-of-n baseline: n samples per prompt, the scorer keeps the best"),
    "bench": ("recipes.bench", "comparative benchmark: conditional SFT vs PPO, DPO, RLOO, best-of-n"),
    "sample": ("recipes.sample", "sample n completions per prompt into a rating task file"),
    "rate": ("recipes.rate", "serve the local rating page; --export writes ratings files"),
}


def usage() -> str:
    width = max(len(k) for k in JOBS)
    lines = ["usage: condtune <job> [--config FILE.yaml] [key=value ...]", "", "jobs:"]
    lines += [f"  {name.ljust(width)}  {desc}" for name, (_, desc) in JOBS.items()]
    lines += ["", "`condtune <job> --help` lists a job's settings."]
    return "\n".join(lines)


def one_line(exc: BaseException) -> str:
    """An error message as one line (a message that quotes another library's may hold newlines)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def resolve(argv: list[str]) -> tuple[str, list[str]]:
    """(job, the rest of argv); an unknown or missing job is a :class:`~condtune.config.ConfigError`."""
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in JOBS:
        return f"{argv[0]} {argv[1]}", argv[2:]
    if argv and argv[0] in JOBS:
        return argv[0], argv[1:]
    jobs = ", ".join(JOBS)
    if not argv:
        raise ConfigError(f"no job given; choose one of: {jobs} (`condtune --help` says what each does)")
    two = [j for j in JOBS if j.startswith(argv[0] + " ")]
    name = f"{argv[0]} {argv[1]}" if two and len(argv) >= 2 else argv[0]
    raise ConfigError(f"unknown job {name!r}; choose one of: {jobs}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=os.environ.get("CONDTUNE_LOG", "INFO"), format="%(message)s")

    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    try:
        job, rest = resolve(argv)
    except ConfigError as exc:
        print(f"condtune: error: {one_line(exc)}", file=sys.stderr)
        return 2
    module = importlib.import_module(JOBS[job][0])
    try:
        return int(module.main(rest) or 0)
    except (ConfigError, DataError) as exc:  # DataError includes ArtifactError (a damaged saved folder)
        print(f"condtune {job}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"condtune {job}: interrupted; {KEPT.get(job, KEPT_DEFAULT)}", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:  # the machine's faults: a full or read-only disk, no memory
        if os.environ.get("CONDTUNE_DEBUG"):
            raise
        print(f"condtune {job}: error: {machine_fault(exc)}", file=sys.stderr)
        return 1
    finally:
        release()


KEPT_DEFAULT = "every output is written whole or not at all, so nothing half-written was kept; rerun the same command"
KEPT = {
    "train": "complete checkpoints stay in out/checkpoints; rerun the same command to resume from the last one",
    "relabel": "with stream=true the complete shards stay in out/ and the same command resumes after them; "
    "without it nothing was written",
    "ppo": "complete checkpoints stay in output_dir/checkpoints; rerun the same command to resume",
    "dpo": "complete checkpoints stay in out/checkpoints; rerun the same command to resume",
    "rloo": "complete checkpoints stay in out/checkpoints; rerun the same command to resume",
    "bench": "every finished result stays in out/results.jsonl; rerun the same command to resume",
    "quickstart": "finished stages stay in out/; rerun the same command to go on from them",
}
"""what an interrupted job keeps, and how to go on"""


def machine_fault(exc: BaseException) -> str:
    """A fault of the machine (disk full, read-only, permission, no memory) as one line naming the file."""
    if isinstance(exc, MemoryError):
        return "out of memory; ask for less (fewer samples, a smaller batch_size) or use a machine with more memory"
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    advice = {
        errno.ENOSPC: "the disk is full; free some space and rerun (complete outputs and checkpoints were kept)",
        errno.EDQUOT: "the disk quota is used up; free some space and rerun",
        errno.EROFS: "the file system is read-only; choose an output on a writable disk",
        errno.EACCES: "permission denied; choose an output you may write to",
        errno.EPERM: "operation not permitted; choose an output you may write to",
    }.get(getattr(exc, "errno", None), "")
    return where + (advice or getattr(exc, "strerror", None) or one_line(exc) or type(exc).__name__)


if __name__ == "__main__":
    sys.exit(main())
