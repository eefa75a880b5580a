"""``condtune <job> [--config FILE.yaml] [key=value | --key value ...]``

Each job is a command of :data:`condtune.commands.COMMANDS` (a module with a ``main(argv)`` and a
config class); this file only dispatches. ``condtune <job> --help`` prints the job's settings.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

from condtune.commands import COMMANDS
from condtune.errors import ConfigError, DataError
from condtune.outputs import release


def usage() -> str:
    width = max(len(k) for k in COMMANDS)
    lines = ["usage: condtune <job> [--config FILE.yaml] [key=value ...]", "", "jobs:"]
    lines += [f"  {name.ljust(width)}  {c.summary}" for name, c in COMMANDS.items()]
    lines += ["", "`condtune <job> --help` lists a job's settings."]
    return "\n".join(lines)


def one_line(exc: BaseException) -> str:
    """An error message as one line (a message that quotes another library's may hold newlines)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def resolve(argv: list[str]) -> tuple[str, list[str]]:
    """(job, the rest of argv); an unknown or missing job is a :class:`~condtune.config.ConfigError`."""
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in COMMANDS:
        return f"{argv[0]} {argv[1]}", argv[2:]
    if argv and argv[0] in COMMANDS:
        return argv[0], argv[1:]
    jobs = ", ".join(COMMANDS)
    if not argv:
        raise ConfigError(f"no job given; choose one of: {jobs} (`condtune --help` says what each does)")
    two = [j for j in COMMANDS if j.startswith(argv[0] + " ")]
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
    command = COMMANDS[job]
    try:
        return int(command.main()(rest) or 0)
    except (ConfigError, DataError) as exc:  # DataError includes ArtifactError (a damaged saved folder)
        print(f"condtune {job}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"condtune {job}: interrupted; {command.kept}", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:  # the machine's faults: a full or read-only disk, no memory
        if os.environ.get("CONDTUNE_DEBUG"):
            raise
        print(f"condtune {job}: error: {machine_fault(exc)}", file=sys.stderr)
        return 1
    finally:
        release()


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
