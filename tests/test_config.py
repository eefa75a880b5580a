"""Typed config parsing, and every shipped YAML parses into its recipe's dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from condtune.config import ConfigError, parse
from condtune.sampling import SamplingConfig

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Demo:
    name: str = "x"
    steps: int = 3
    lr: float = 1e-4
    flag: bool = False
    items: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    maybe: float | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def test_overrides_and_types(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("steps: 5\nsampling:\n  temperature: 0.5\n")
    cfg = parse(
        Demo,
        [
            "--config",
            str(cfg_file),
            "lr=3e-4",
            "--flag",
            "--items",
            "a",
            "b",
            "--tags",
            "domain=movie",
            "sampling.max_new_tokens=7",
            "--maybe",
            "2",
        ],
    )
    assert (cfg.steps, cfg.lr, cfg.flag, cfg.items, cfg.tags, cfg.maybe) == (
        5,
        3e-4,
        True,
        ["a", "b"],
        {"domain": "movie"},
        2.0,
    )
    assert cfg.sampling.temperature == 0.5 and cfg.sampling.max_new_tokens == 7


def test_repeated_list_and_dict_flags_accumulate():
    cfg = parse(Demo, ["--items", "a", "--items", "b c", "--tags", "x=1", "--tags", "y=2"])
    assert cfg.items == ["a", "b c"] and cfg.tags == {"x": "1", "y": "2"}


def test_errors_name_file_and_key(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key\(s\) \['stepz'\]"):
        parse(Demo, ["--config", str(cfg_file)])
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        parse(Demo, ["steps=2.5"])
    with pytest.raises(ConfigError, match="lr: expected a number"):
        parse(Demo, ["lr=fast"])
    with pytest.raises(ConfigError, match="config file not found"):
        parse(Demo, ["--config", str(tmp_path / "missing.yaml")])


@dataclass
class Required:
    data: str
    sampling: SamplingConfig
    out: Path = Path("runs/x")


def test_defaults_dict_reads_each_fields_default_as_to_dict_writes_it():
    from condtune.config import defaults_dict, to_dict

    d = defaults_dict(Demo(name="y", steps=9, items=["a"]))
    assert d["name"] == "x" and d["steps"] == 3 and d["items"] == [] and d["maybe"] is None
    assert d["sampling"] == to_dict(SamplingConfig())  # the factory's value, not the instance's
    r = defaults_dict(Required(data="f.jsonl", sampling=SamplingConfig(temperature=0.5)))
    assert "data" not in r and r["out"] == "runs/x"  # a required field has no default; paths as strings
    assert r["sampling"] == to_dict(SamplingConfig())  # a nested config without a default: its own fields'


def test_a_setting_added_later_counts_as_unchanged_only_at_its_default():
    from condtune.checkpointing import with_later_defaults

    defaults = {"lr": 1e-4, "sft": {"steps": 3, "new": 0}, "top_new": "any"}
    new = {"lr": 1e-3, "sft": {"steps": 5, "new": 0}, "top_new": "any"}
    old = {"lr": 1e-3, "sft": {"steps": 5}}  # recorded before 'new' and 'top_new' existed
    assert with_later_defaults(old, new, defaults) == new
    assert with_later_defaults(old, {**new, "top_new": "mirror"}, defaults) != {**new, "top_new": "mirror"}
    assert with_later_defaults(old, {**new, "sft": {"steps": 5, "new": 2}}, defaults)["sft"] == {"steps": 5}
    assert with_later_defaults({"lr": 1e-2, "sft": {"steps": 5}}, new, defaults)["lr"] == 1e-2  # a change stays one
    assert with_later_defaults(old, new, {}) == old  # no defaults given: any missing key is a change


def test_a_nested_setting_changes_only_what_it_names():
    """`sampling.max_new_tokens=3` keeps generate's own temperature 0.8 and top_p 0.95, and `sft.max_steps=1`
    keeps train's recipe (tag_contrast 1): a section given in part is the config's default, changed there."""
    from condtune.commands.generate import GenerateConfig
    from condtune.commands.train import TrainConfig

    s = parse(GenerateConfig, ["sampling.max_new_tokens=3"]).sampling
    assert (s.max_new_tokens, s.temperature, s.top_p) == (3, 0.8, 0.95)
    assert parse(TrainConfig, ["sft.max_steps=1"]).sft.tag_contrast == 1.0
    assert parse(TrainConfig, ["sft.tag_contrast=0"]).sft.tag_contrast == 0.0
