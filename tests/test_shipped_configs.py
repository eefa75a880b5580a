"""Every packaged config names the command that runs it on its first line, and that command's config
class (read from the registry) parses it without an error: a renamed or removed setting breaks here,
not for a user."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from condtune import config as C
from condtune import configs
from condtune.commands import COMMANDS
from condtune.errors import ConfigError

CONFIGS = sorted(configs.FOLDER.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_packaged_config_parses_for_its_command(path):
    head = path.read_text().splitlines()[0]
    m = re.fullmatch(rf"# condtune (.+?) --config {re.escape(path.stem)}", head)
    assert m, f"{path}: first line should be '# condtune <job> --config {path.stem}', got {head!r}"
    job = m.group(1)
    assert job in COMMANDS, f"{path}: unknown job {job!r}"
    C.parse(COMMANDS[job].config_class(), ["--config", path.stem])


def test_there_are_configs():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_a_config_class_and_a_main(name):
    command = COMMANDS[name]
    assert dataclasses.is_dataclass(command.config_class())
    assert callable(command.main())


def test_a_packaged_name_or_a_path():
    assert configs.resolve("frontier") == configs.FOLDER / "frontier.yaml"
    assert str(configs.resolve("./my.yaml")) == "my.yaml"
    assert str(configs.resolve("sub/train")) == "sub/train"
    with pytest.raises(ConfigError, match="no packaged config of that name; packaged configs: .*frontier"):
        configs.resolve("fronteir")


def test_help_with_a_packaged_config_runs_from_an_empty_folder(tmp_path):
    """After `pip install`, `condtune train --config frontier --help` needs no clone."""
    out = subprocess.run(
        [sys.executable, "-m", "condtune", "train", "--config", "frontier", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "TrainConfig settings" in out.stdout
