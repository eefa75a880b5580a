"""Experiment tracking (report_to): off by default, a clear error for an unknown tracker or a
missing package, and with TensorBoard the metrics of a run are in its event files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from condtune.cli import main as cli
from condtune.tracking import Tracker, check_report_to


def _scalars(folder: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[float]] = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend(e.value for e in acc.Scalars(tag))
    return out


def test_unknown_tracker_and_missing_package_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="report_to='tensorbord': use one of none, tensorboard, wandb"):
        check_report_to("tensorbord")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ValueError, match=r"wandb package is not installed \(pip install wandb\)"):
        check_report_to("wandb")
    assert check_report_to("none") == "none"


def test_bad_report_to_stops_a_command_before_it_starts(tmp_path, capsys):
    assert cli(["ppo", "report_to=mlflow", f"output_dir={tmp_path / 'ppo'}"]) == 2
    assert "report_to='mlflow'" in capsys.readouterr().err and not (tmp_path / "ppo").exists()


def test_tracker_writes_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    t = Tracker("tensorboard", tmp_path)
    for step in (1, 2):
        t.log({"step": step, "objective/kl": 0.5 * step, "note": "text is skipped"}, step=step)
    t.close()
    assert _scalars(tmp_path / "tensorboard") == {"objective/kl": [0.5, 1.0]}
    Tracker("none", tmp_path / "off").log({"x": 1.0}, step=1)
    assert not (tmp_path / "off").exists()


def test_ppo_and_train_log_to_tensorboard(tmp_path, tiny_lm):
    pytest.importorskip("tensorboard")
    import pandas as pd

    from condtune.relabel import TagCard, write_tagged
    from condtune.tags import Binning, TagFormat

    ppo = tmp_path / "ppo"
    args = ["--config", "ppo_tiny", f"model={tiny_lm}", "max_steps=2"]
    assert cli(["ppo", *args, f"output_dir={ppo}", "report_to=tensorboard"]) == 0
    logged = _scalars(ppo / "tensorboard")
    assert len(logged["objective/kl"]) == 2 and "objective/rlhf_reward" in logged
    # where a run is logged is not what it is: the same run resumes with tracking off
    assert cli(["ppo", *args, f"output_dir={ppo}", "max_steps=2"]) == 0

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    df = pd.DataFrame({"prompt": ["Review:"] * 8, "completion": ["Good.", "Bad."] * 4, "score_bin": [1, 0] * 4})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    write_tagged(df, card, tmp_path / "tagged.jsonl")
    policy = tmp_path / "policy"
    train = [
        "train",
        f"data={tmp_path / 'tagged.jsonl'}",
        f"model={tiny_lm}",
        "sft.max_steps=2",
        "sft.per_device_train_batch_size=4",
    ]
    assert cli([*train, f"output_dir={policy}", "report_to=tensorboard"]) == 0
    assert "train/loss" in _scalars(policy / "checkpoints")
