"""Every `condtune ...` command in the user docs parses with today's settings: a renamed or removed
setting breaks here, not for a reader who copies the line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from condtune import config as C
from condtune.cli import resolve
from condtune.commands import COMMANDS
from condtune.commands.generate import ALIASES as GENERATE_ALIASES

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/quickstart.md", "docs/rating.md", "recipes/README.md"]
ALIASES = {"generate": GENERATE_ALIASES, "sample": {"-n": "num_return_sequences", "-o": "output_path"}}


def commands(page: str) -> list[str]:
    """The `condtune ...` lines of a page's code blocks (continuation lines joined, comments cut)."""
    found, block, pending = [], False, ""
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            block = not block
            continue
        if not block:
            continue
        line = pending + line.split(" #", 1)[0].rstrip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if not pending and re.match(r"\s*(accelerate launch .* -m |torchrun .* -m )?condtune ", line):
            found.append(re.sub(r"^\s*(accelerate launch .* -m |torchrun .* -m )?condtune ", "", line))
    return found


def config_comments() -> list[tuple[str, str]]:
    """The `# condtune ...` lines in the comments of the packaged configs."""
    found = []
    for path in sorted((ROOT / "condtune" / "configs").glob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if m := re.match(r"#\s+condtune (.+)", line):
                found.append((f"condtune/configs/{path.name}", m.group(1).split(" # ")[0].strip()))
    return found


CASES = [(page, cmd) for page in PAGES for cmd in commands(page)] + config_comments()


def test_the_pages_have_commands():
    assert len(CASES) >= 15


@pytest.mark.parametrize("page, cmd", CASES, ids=[f"{p}: {c[:60]}" for p, c in CASES])
def test_a_documented_command_parses(page, cmd):
    argv = shlex.split(cmd)
    if "--help" in argv or not argv:
        return
    job, rest = resolve(argv)
    if job == "rate":
        rest = COMMANDS[job].load().task_first(rest)
    C.parse(COMMANDS[job].config_class(), rest, ALIASES.get(job))
