"""Tiny-model end-to-end runs of the baseline commands (dpo, rloo, best-of-n), through the real CLI."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from condtune.cli import main as cli


@pytest.fixture(scope="module")
def scorer(tmp_path_factory, tiny_encoder):
    """A tiny scorer (reads the completion only), trained once for the module."""
    from tests.conftest import make_ratings

    d = tmp_path_factory.mktemp("baselines")
    ratings = d / "ratings.jsonl"
    ratings.write_text("".join(json.dumps(r) + "\n" for r in make_ratings(n_items=40)))
    args = [
        f"ratings={ratings}",
        f"backbone={tiny_encoder}",
        "optim.num_train_epochs=1",
        "optim.per_device_train_batch_size=16",
    ]
    assert cli(["scorer", "train", *args, "val_fraction=0.25", f"output_dir={d / 'scorer'}"]) == 0
    return d / "scorer"


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("Movie review:\nBook review:\nTweet:\n")
    return path


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _weights(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_dpo_from_pairs(tiny_lm, pairs_file, tmp_path, capsys):
    out = tmp_path / "dpo"
    args = [
        "dpo",
        f"model={tiny_lm}",
        f"pairs={pairs_file}",
        "dpo.checkpoints=[1,2]",
        "dpo.per_device_train_batch_size=4",
    ]
    assert cli([*args, "dpo.learning_rate=1e-3", "dpo.max_length=32", f"output_dir={out}"]) == 0
    s = _summary(out)
    assert s["final"] == str(out / "step_2") and s["steps"] == 2 and s["pairs"] == 40
    assert s["snapshots"] == [str(out / "step_1"), str(out / "step_2")]
    assert math.isfinite(s["first_loss"]) and math.isfinite(s["last_loss"])
    assert (out / "step_1" / "model.safetensors").exists() and (out / "step_2" / "tokenizer.json").exists()
    base, trained = _weights(tiny_lm), _weights(out / "step_2")
    assert base.keys() == trained.keys() and all(base[k].shape == trained[k].shape for k in base)
    assert any(not torch.equal(base[k], trained[k]) for k in base)  # it trained
    assert "next: condtune best-of-n model=" in capsys.readouterr().out


def test_dpo_from_ratings_and_its_errors(tiny_lm, tmp_path, capsys):
    from tests.conftest import make_ratings

    ratings = tmp_path / "pointwise.jsonl"
    rows = [{"prompt": "Review:", "completion": r["text"], "score": r["score"]} for r in make_ratings(n_items=20)]
    ratings.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli(["dpo", f"model={tiny_lm}", f"output_dir={tmp_path / 'none'}"]) == 2  # neither pairs nor ratings
    assert "pairs=" in capsys.readouterr().err and not (tmp_path / "none").exists()
    cols = ["columns.prompt_col=prompt", "columns.completion_col=completion"]
    common = [
        "dpo",
        f"model={tiny_lm}",
        f"ratings={ratings}",
        *cols,
        "dpo.checkpoints=[1]",
        "dpo.per_device_train_batch_size=4",
    ]
    assert cli([*common, "dpo.min_margin=100", f"output_dir={tmp_path / 'far'}"]) == 2  # no pair that far apart
    assert "lower min_margin" in capsys.readouterr().err
    out = tmp_path / "dpo"
    assert cli([*common, "dpo.max_train_samples=8", "dpo.max_length=32", f"output_dir={out}"]) == 0
    s = _summary(out)
    assert s["pairs"] == 8 and s["steps"] == 1 and math.isfinite(s["last_loss"])
    assert (
        cli([*common, "dpo.max_train_samples=4", f"output_dir={out}"]) == 2
    )  # another run's folder: refused, not resumed
    assert "holds another dpo run (changed: ['dpo'])" in capsys.readouterr().err


def test_rloo(tiny_lm, scorer, prompts_file, tmp_path):
    out = tmp_path / "rloo"
    args = ["rloo", f"model={tiny_lm}", f"scorer={scorer}", f"prompts={prompts_file}", "rloo.checkpoints=[1,2]"]
    assert (
        cli(
            [
                *args,
                "rloo.per_device_train_batch_size=4",
                "rloo.num_generations=2",
                "sampling.max_new_tokens=4",
                f"output_dir={out}",
            ]
        )
        == 0
    )
    s = _summary(out)
    assert s["final"] == str(out / "step_2") and s["steps"] == 2
    assert all(math.isfinite(s[k]) for k in ("first_reward", "last_reward", "last_loss"))
    assert s["scorer_calls"] >= 2 * 4 and 0 < s["generated_tokens"] <= 4 * s["scorer_calls"]
    snaps = json.loads((out / "snapshots.json").read_text())
    assert [c["name"] for c in snaps] == ["step_1", "step_2"] and snaps[0]["scorer_calls"] < snaps[1]["scorer_calls"]
    assert (out / "step_2" / "model.safetensors").exists()


def test_best_of_n(tiny_lm, scorer, prompts_file, tmp_path, capsys):
    out = tmp_path / "bon"
    args = ["best-of-n", f"model={tiny_lm}", f"scorer={scorer}", f"prompts={prompts_file}", "sampling.max_new_tokens=4"]
    assert cli([*args, "n=4", f"output_dir={out}"]) == 0
    pool, picks = pd.read_json(out / "pool.jsonl", lines=True), pd.read_json(out / "picks_n4.jsonl", lines=True)
    assert len(pool) == 3 * 4 and list(picks["prompt"]) == ["Movie review:", "Book review:", "Tweet:"]
    assert {"prompt", "text", "n_tokens", "proxy"} <= set(picks.columns) and picks["proxy"].map(math.isfinite).all()
    assert (picks["n_tokens"] <= 4).all()
    best = pool.groupby("prompt", sort=False)["proxy"].max()
    assert picks.set_index("prompt")["proxy"].equals(best.loc[picks["prompt"]])  # each pick is its prompt's best
    s = _summary(out)
    assert s["scorer_calls"] == 12 and s["mean_score_of_picks"] >= s["mean_score_of_samples"]
    assert "next: condtune rloo" in capsys.readouterr().out
    assert cli([*args, "n=2", f"output_dir={out}"]) == 2  # the pool of another n is not reused
    assert "holds another best-of-n run (changed: ['n'])" in capsys.readouterr().err
    assert cli(["best-of-n", f"model={tiny_lm}", f"scorer={tmp_path / 'nope'}", f"output_dir={tmp_path / 'x'}"]) == 2
    assert "not a condtune scorer" in capsys.readouterr().err
