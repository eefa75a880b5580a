"""Tiny-model end-to-end runs of each core command, through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from condtune.cli import main as cli
from condtune.tables import read_table


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_lm, tiny_encoder):
    """scorer train -> relabel -> train, run once for the module; returns the paths."""
    from tests.conftest import make_ratings

    d = tmp_path_factory.mktemp("chain")
    ratings = d / "ratings.jsonl"
    ratings.write_text("".join(json.dumps(r) + "\n" for r in make_ratings(n_items=80)))
    corpus = d / "corpus.jsonl"
    rows = [
        {"prompt": "Review:", "completion": r["text"], "domain": "movie" if i % 3 else "book"}
        for i, r in enumerate(make_ratings(n_items=40, raters=1))
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = {k: d / k for k in ("scorer", "policy")}
    p.update(ratings=ratings, corpus=corpus, tagged=d / "tagged.jsonl")
    assert (
        cli(
            [
                "scorer",
                "train",
                f"ratings={ratings}",
                f"backbone={tiny_encoder}",
                "columns.rater_col=rater",
                "columns.item_col=item_id",  # two items may share a text: the rater rated each once
                "normalize=rater",
                "optim.num_train_epochs=2",
                "optim.per_device_train_batch_size=8",
                "val_fraction=0.25",
                f"output_dir={p['scorer']}",
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "relabel",
                f"data={corpus}",
                f"scorer={p['scorer']}",
                "num_bins=3",
                "tag_columns=[domain]",
                f"output_path={p['tagged']}",
            ]
        )
        == 0
    )
    assert (
        cli(
            [
                "train",
                f"data={p['tagged']}",
                f"model={tiny_lm}",
                "sft.max_steps=3",
                "sft.per_device_train_batch_size=4",
                "sft.save_steps=2",
                f"output_dir={p['policy']}",
            ]
        )
        == 0
    )
    return p


def test_scorer_outputs(chain):
    metrics = json.loads((chain["scorer"] / "metrics.json").read_text())["metrics"]
    assert {"pearson", "spearman", "mae", "pairwise_accuracy", "human_split_half_r", "human_spearman_brown"} <= set(
        metrics
    )
    meta = json.loads((chain["scorer"] / "scorer.json").read_text())
    assert meta["normalize"] == "rater" and meta["target_sd"] > 0


def test_relabel_outputs(chain):
    df = pd.read_json(chain["tagged"], lines=True)
    card = json.loads(Path(f"{chain['tagged']}.card.json").read_text())
    assert len(card["binning"]["edges"]) == 2 and sum(card["binning"]["counts"]) == len(df) == 40
    assert card["attributes"] == {"domain": ["book", "movie"]}
    assert df["score_bin"].between(0, 2).all()
    first = df.iloc[0]
    assert first["tagged_prompt"].startswith(
        f"Domain: {first['domain']}.\nRating: {first['score_bin'] + 1} out of 3 stars.\n"
    )


def test_train_outputs(chain):
    card = json.loads((chain["policy"] / "condtune_policy.json").read_text())
    assert len(card["binning"]["edges"]) == 2
    assert (chain["policy"] / "model.safetensors").exists()
    stats = json.loads((chain["policy"] / "train_stats.json").read_text())["stats"]
    assert stats["steps"] == 3 and stats["final_loss"] == stats["final_loss"]  # finite


def test_online_rounds_need_a_scorer_and_score_tags_only(chain, tmp_path, capsys):
    base = [
        "train",
        f"data={chain['tagged']}",
        f"model={chain['policy']}",
        "sft.max_steps=1",
        "sft.per_device_train_batch_size=4",
        "online.rounds=1",
    ]
    assert cli([*base, f"output_dir={tmp_path / 'a'}"]) == 2
    assert "needs scorer=" in capsys.readouterr().err
    assert cli([*base, f"scorer={chain['scorer']}", f"output_dir={tmp_path / 'b'}"]) == 2  # stops before any training
    assert "attribute tags" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_generate(chain, capsys):
    assert (
        cli(
            [
                "generate",
                "--model",
                str(chain["policy"]),
                "--score",
                "3",
                "--prompt",
                "Review:",
                "-n",
                "2",
                "--tags",
                "domain=movie",
                "--scorer",
                str(chain["scorer"]),
                "--json",
                "sampling.max_new_tokens=5",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 2 and all(
        r["requested"] == 3 and r["bin"] == 3 and isinstance(r["achieved"], float) for r in rows
    )


def test_generate_best_of_and_guidance(chain, capsys):
    assert (
        cli(
            [
                "generate",
                "--model",
                str(chain["policy"]),
                "--score",
                "-3",
                "--prompt",
                "Review:",
                "-n",
                "1",
                "--best_of",
                "3",
                "--guidance_scale",
                "1.5",
                "--scorer",
                str(chain["scorer"]),
                "--json",
                "sampling.max_new_tokens=4",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 1 and rows[0]["bin"] == 1


def test_generate_anchored_on_the_base(chain, capsys):
    assert (
        cli(
            [
                "generate",
                "--model",
                str(chain["policy"]),
                "--score",
                "3",
                "--prompt",
                "Review:",
                "-n",
                "2",
                "--anchored",
                "--guidance_scale",
                "2",
                "--json",
                "sampling.max_new_tokens=4",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 2 and all(r["bin"] == 3 for r in rows)


def test_generate_anchored_against_another_score(chain, capsys):
    args = ["generate", "--model", str(chain["policy"]), "--score", "3", "--prompt", "Review:", "-n", "2"]
    args += ["--anchored", "--guidance_scale", "0.5", "--json", "sampling.max_new_tokens=4"]
    assert cli([*args, "--contrast_score", "-3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 2 and all(r["bin"] == 3 for r in rows)
    assert cli([*args, "--contrast_score", "3"]) == 2  # the same bin: a zero contrast
    assert "--contrast_score 3.0: it falls in the same bin as the requested score" in capsys.readouterr().err
    plain = ["generate", "--model", str(chain["policy"]), "--score", "3", "--contrast_score", "-3"]
    assert cli(plain) == 2
    assert "--contrast_score acts through guidance" in capsys.readouterr().err


def test_generate_unknown_tag_is_clear(chain, capsys):
    args = ["generate", "--model", str(chain["policy"]), "--score", "1", "sampling.max_new_tokens=2"]
    assert cli([*args, "--tags", "domain=poem"]) == 2
    err = capsys.readouterr().err
    assert "tags: unknown value 'poem' for tag 'domain'; known values: ['book', 'movie']" in err
    assert "Traceback" not in err
    assert cli([*args, "--tags", "genre=poem"]) == 2
    assert "tags: unknown tag 'genre'" in capsys.readouterr().err


def test_scorer_train_pairwise(tmp_path, pairs_file, tiny_encoder):
    out = tmp_path / "bt"
    assert (
        cli(
            [
                "scorer",
                "train",
                f"ratings={pairs_file}",
                "objective=bradley_terry",
                f"backbone={tiny_encoder}",
                "optim.num_train_epochs=1",
                "optim.per_device_train_batch_size=8",
                "val_fraction=0.25",
                f"output_dir={out}",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["pairwise_accuracy"] <= 1.0 and metrics["n_pairs"] > 0


def test_fetch_lists_assets(capsys):
    assert cli(["fetch", "only=minilm"]) == 0
    assert "minilm" in capsys.readouterr().out


def test_scorer_eval(chain, capsys):
    assert (
        cli(["scorer", "eval", f"scorer={chain['scorer']}", f"ratings={chain['ratings']}", "columns.item_col=item_id"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["n_items"] == 80 and -1 <= out["pearson"] <= 1


def test_quickstart_tiny(tmp_path, tiny_lm, tiny_encoder, capsys):
    """The whole quickstart chain on VADER movie snippets with tiny models and tiny budgets."""
    out = tmp_path / "qs"
    args = [
        f"output_dir={out}",
        f"model={tiny_lm}",
        f"scorer_backbone={tiny_encoder}",
        "scorer_max_train_samples=64",
        "scorer_optim.per_device_train_batch_size=16",
        "max_train_samples=48",
        "num_bins=3",
        "sft.max_steps=2",
        "sft.per_device_train_batch_size=4",
        "--prompts",
        "Movie review:",
        "num_return_sequences=2",
        "sampling.max_new_tokens=6",
    ]
    assert cli(["quickstart", *args]) == 0
    text = capsys.readouterr().out
    assert "| prompt | requested | achieved | text |" in text and "Spearman(requested, achieved)" in text
    for name in (
        "scorer/scorer.json",
        "tagged.jsonl",
        "tagged.jsonl.card.json",
        "policy/condtune_policy.json",
        "samples.jsonl",
        "summary.json",
        "report.md",
    ):
        assert (out / name).exists(), name
    samples = pd.read_json(out / "samples.jsonl", lines=True)
    assert len(samples) == 3 * 2 and samples["requested"].nunique() == 3
    assert (samples["kl"] >= 0).all() and samples["judge"].between(-1, 1).all()  # KL from the base; the lexicon
    summary = json.loads((out / "summary.json").read_text())
    assert "VADER lexicon" in summary["judge"]["name"] and len(summary["kl_from_base"]) == 3
    policy_card = json.loads((out / "policy" / "condtune_policy.json").read_text())
    assert policy_card["decode"] == {"anchored": True, "contrast": "mirror", "guidance_scale": 1.0}  # the recipe
    assert cli(["quickstart", *args]) == 0  # a rerun reuses every finished stage


@pytest.mark.parametrize(
    "bad, says",
    [
        (["--score", "nan"], "finite number"),
        (["--bin", "0"], "has bins 1..3"),
        (["--bin", "99"], "has bins 1..3"),
        (["-n", "0"], "at least 1"),
        (["--score", "1", "--bin", "2"], "not both"),
    ],
)
def test_generate_refuses_requests_that_mean_nothing(chain, capsys, bad, says):
    assert (
        cli(["generate", "--model", str(chain["policy"]), "--prompt", "Review:", "sampling.max_new_tokens=2", *bad])
        == 2
    )
    assert says in capsys.readouterr().err


def test_generate_warns_when_a_score_is_clamped(chain, caplog):
    assert (
        cli(["generate", "--model", str(chain["policy"]), "--score", "99", "-n", "1", "sampling.max_new_tokens=2"]) == 0
    )
    assert "beyond the policy's targets" in caplog.text and "top bin" in caplog.text


def test_relabel_writes_the_trl_layout(chain, tmp_path):
    """layout=trl: the table trl's SFTTrainer reads, its prompt the tagged one (the same bins and tags)."""
    out = tmp_path / "trl.jsonl"
    args = ["relabel", f"data={chain['corpus']}", f"scorer={chain['scorer']}", "num_bins=3", "tag_columns=[domain]"]
    assert cli([*args, "layout=trl", f"output_path={out}"]) == 0
    trl, tagged = read_table(out), read_table(chain["tagged"])
    assert trl["prompt"].tolist() == tagged["tagged_prompt"].tolist()
    assert trl["untagged_prompt"].tolist() == tagged["prompt"].tolist()
    assert cli([*args, "layout=trl", "stream=true", f"output_path={tmp_path / 'shards'}"]) == 2
