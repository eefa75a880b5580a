"""The settings carry Hugging Face's names: an old key is refused with its new name (exit 2, one
line, before any work), and a run recorded under the old names still resumes."""

from __future__ import annotations

import json

import pytest

from condtune import checkpointing
from condtune import config as C
from condtune.commands.ppo import PPOConfig
from condtune.commands.relabel import RelabelConfig
from condtune.commands.train import TrainConfig
from condtune.errors import ConfigError
from condtune.renames import RENAMED, upgrade_record
from condtune.scorer_training import ScorerTrainConfig
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "cls, old, says",
    [
        (TrainConfig, "sft.lr=1e-4", "sft: lr was renamed to learning_rate"),
        (TrainConfig, "sft.batch_size=4", "sft: batch_size was renamed to per_device_train_batch_size"),
        (TrainConfig, "sft.lr_schedule=constant", "lr_schedule was renamed to lr_scheduler_type"),
        (TrainConfig, "out=runs/p", "out was renamed to output_dir"),
        (RelabelConfig, "out=runs/t.jsonl", "out was renamed to output_path"),
        (ScorerTrainConfig, "optim.epochs=1", "epochs was renamed to num_train_epochs"),
        (ScorerTrainConfig, "optim.warmup=0.1", "warmup was renamed to warmup_ratio"),
        (ScorerTrainConfig, "optim.seed=3", "optim.seed was removed: a run has one seed, the top-level seed"),
        (PPOConfig, "total_updates=10", "total_updates was renamed to max_steps"),
        (PPOConfig, "save_every=5", "save_every was renamed to save_steps"),
        (PPOConfig, "keep_checkpoints=2", "keep_checkpoints was renamed to save_total_limit"),
        (PPOConfig, "resume=false", "resume=false is overwrite=true"),
    ],
)
def test_an_old_key_names_its_new_name(cls, old, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        C.parse(cls, [old])


def test_an_old_key_in_a_yaml_file_names_its_new_name(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("sft:\n  lr: 1.0e-4\n")
    with pytest.raises(ConfigError, match=r"old.yaml: sft: lr was renamed to learning_rate"):
        C.parse(TrainConfig, ["--config", str(path)])


def test_the_command_line_refuses_an_old_key_with_exit_2(capsys):
    rc, err = run_cli(capsys, ["train", "sft.lr=1e-4"])
    assert rc == 2 and "sft: lr was renamed to learning_rate" in err and len(err.strip().splitlines()) == 1


def test_a_key_that_was_never_renamed_is_still_an_unknown_key():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lrr'\]"):
        C.parse(TrainConfig, ["sft.lrr=1"])


def test_every_new_name_is_a_setting_somewhere():
    from condtune.commands import COMMANDS

    def fields(cls, seen):
        import dataclasses

        for f in dataclasses.fields(cls):
            seen.add(f.name)
            t = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(t):
                fields(type(t), seen)
        return seen

    names = set()
    for command in COMMANDS.values():
        fields(command.config_class(), names)
    missing = {new for news in RENAMED.values() for new in news} - names
    assert not missing, f"renamed to names no config has: {missing}"


def test_a_record_in_the_old_names_reads_in_the_new_ones():
    new = {"sft": {"learning_rate": 1e-4, "per_device_train_batch_size": 16}, "sampling": {"batch_size": 16}}
    old = {"sft": {"lr": 1e-4, "batch_size": 16}, "sampling": {"batch_size": 16}}
    assert upgrade_record(old, new) == new
    changed = {"sft": {"lr": 3e-4, "batch_size": 16}, "sampling": {"batch_size": 16}}
    assert upgrade_record(changed, new)["sft"]["learning_rate"] == 3e-4  # a real change still shows


def test_a_run_recorded_under_old_names_resumes_and_a_changed_one_is_refused(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"data": "x", "sft": {"lr": 1e-4, "batch_size": 16}}))
    identity = {"data": "x", "sft": {"learning_rate": 1e-4, "per_device_train_batch_size": 16}}
    checkpointing.claim_run(tmp_path, identity, "train")  # resumes: no error
    other = {"data": "x", "sft": {"learning_rate": 3e-4, "per_device_train_batch_size": 16}}
    with pytest.raises(ConfigError, match=r"changed: \['sft'\]"):
        checkpointing.claim_run(tmp_path, other, "train")
