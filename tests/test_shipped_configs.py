"""Every shipped YAML names the command that runs it on its first line, and that command's config
class reads it without an error (a renamed or removed setting breaks here, not for a user)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from condtune import config as C
from condtune.cli import JOBS

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def _config_class(module) -> type:
    name = re.search(r"\bparse\(([\w.]+)", Path(module.__file__).read_text()).group(1)  # e.g. C.parse(TrainConfig, ...)
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_parses_for_its_command(path):
    head = path.read_text().splitlines()[0]
    m = re.fullmatch(rf"# condtune (.+?) --config {re.escape(str(path))}", head)
    assert m, f"{path}: first line should be '# condtune <job> --config {path}', got {head!r}"
    job = m.group(1)
    assert job in JOBS, f"{path}: unknown job {job!r}"
    cls = _config_class(importlib.import_module(JOBS[job][0]))
    C.parse(cls, ["--config", str(path)])


def test_there_are_configs():
    assert len(CONFIGS) >= 10
