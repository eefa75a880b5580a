"""Slow tier (`pytest -m slow`): the real embedded defaults, short budgets. Not timed."""

from __future__ import annotations

import json

import pytest

from condtune.cli import main as cli

pytestmark = pytest.mark.slow


def test_real_scorer_learns_vader(tmp_path):
    """MiniLM on 1,500 VADER items for one epoch already tracks the human mean."""
    out = tmp_path / "scorer"
    assert (
        cli(
            [
                "scorer",
                "train",
                "max_train_samples=1500",
                "optim.num_train_epochs=1",
                "optim.learning_rate=1e-4",
                "val_fraction=0.05",
                f"output_dir={out}",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    assert m["pearson"] > 0.5 and m["human_spearman_brown"] > 0.9


def test_real_quickstart_short(tmp_path):
    """The quickstart on SmolLM2-135M with a short SFT: the chain runs and writes its report."""
    out = tmp_path / "qs"
    assert (
        cli(
            [
                "quickstart",
                f"output_dir={out}",
                "scorer_max_train_samples=1000",
                "max_train_samples=400",
                "sft.max_steps=8",
                "--prompts",
                "Movie review:",
                "num_return_sequences=2",
                "sampling.max_new_tokens=16",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["per_target"]) == 5
