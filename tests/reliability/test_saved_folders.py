"""A scorer or policy folder with a missing, truncated or damaged file is a one-line error (exit 2)
naming the file, never a traceback from transformers or safetensors, and never a silent stand-in
(a scorer without its tokenizer files used to load a 5-token placeholder and print one score for
every text). An intact folder still loads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from condtune.artifacts import ArtifactError
from condtune.cli import main as cli
from condtune.relabel import TagCard
from condtune.tags import Binning, TagFormat


@pytest.fixture(scope="module")
def saved_scorer(tmp_path_factory, tiny_encoder) -> Path:
    from condtune.scorer import Scorer

    return Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path_factory.mktemp("s") / "scorer")


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory, tiny_lm) -> Path:
    from condtune.modeling import load_causal_lm
    from condtune.saved_policy import save_policy

    model, tok = load_causal_lm(tiny_lm)
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[1, 1]), TagFormat())
    return save_policy(model, tok, card, out_dir=tmp_path_factory.mktemp("p") / "policy", base=str(tiny_lm))


def _error_line(err: str, job: str) -> str:
    """The error, when it is one line, the last one on stderr (above it: progress bars at most)."""
    lines = err.strip().splitlines()
    ok = "Traceback" not in err and sum("error" in line for line in lines) == 1
    return lines[-1] if ok and lines[-1].startswith(f"condtune {job}: error: ") else ""


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _edit_json(path: Path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


SCORER_DAMAGE = {
    "no scorer.json": ("scorer.json", lambda p: p.unlink(), "not a condtune scorer (no scorer.json)"),
    "scorer.json cut": ("scorer.json", lambda p: _truncate(p, 40), "scorer card is not valid JSON"),
    "scorer.json key gone": (
        "scorer.json",
        lambda p: _edit_json(p, lambda d: d.pop("objective")),
        "missing keys ['objective']",
    ),
    "scorer.json bad sd": ("scorer.json", lambda p: _edit_json(p, lambda d: d.update(target_sd="x")), "target_sd"),
    "no head": ("head.safetensors", lambda p: p.unlink(), "scorer head missing"),
    "head cut": ("head.safetensors", lambda p: _truncate(p, 100), "truncated or damaged safetensors"),
    "weights cut at the end": (
        "encoder/model.safetensors",
        lambda p: _truncate(p, p.stat().st_size - 10),
        "truncated or damaged safetensors file: the header describes",
    ),
    "no weights": ("encoder/model.safetensors", lambda p: p.unlink(), "has no weights"),
    "config cut": ("encoder/config.json", lambda p: _truncate(p, 30), "config is not valid JSON"),
    "no tokenizer": ("encoder/tokenizer.json", lambda p: p.unlink(), "has no tokenizer files"),
    "tokenizer cut": ("encoder/tokenizer.json", lambda p: _truncate(p, 100), "tokenizer file is not valid JSON"),
}


@pytest.mark.parametrize("case", list(SCORER_DAMAGE))
def test_a_damaged_scorer_folder_is_a_one_line_error(case, saved_scorer, tmp_path, capsys):
    from condtune.scorer import Scorer

    name, damage, says = SCORER_DAMAGE[case]
    scorer = shutil.copytree(saved_scorer, tmp_path / "scorer")
    damage(scorer / name)
    with pytest.raises(ArtifactError, match=re.escape(says)):
        Scorer.load(scorer)
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "Review:", "completion": "Fine."}\n{"prompt": "Review:", "completion": "Bad."}\n')
    out = tmp_path / "t.jsonl"
    assert cli(["relabel", f"data={data}", f"scorer={scorer}", "num_bins=2", f"output_path={out}"]) == 2
    err = capsys.readouterr().err
    assert _error_line(err, "relabel") and says in _error_line(err, "relabel"), err
    assert str(scorer) in err and not out.exists()


def test_the_scorer_without_its_tokenizer_is_refused_by_every_command(saved_scorer, tmp_path, capsys):
    """The old behaviour: a placeholder tokenizer, and the same bogus score for every text."""
    scorer = shutil.copytree(saved_scorer, tmp_path / "scorer")
    for f in (scorer / "encoder").glob("tokenizer*"):
        f.unlink()
    ratings = tmp_path / "r.jsonl"
    ratings.write_text('{"text": "Great.", "score": 3}\n{"text": "Awful.", "score": -3}\n')
    assert cli(["scorer", "eval", f"scorer={scorer}", f"ratings={ratings}"]) == 2
    assert "scorer encoder has no tokenizer files" in capsys.readouterr().err


def test_an_intact_scorer_still_loads_and_scores(saved_scorer):
    from condtune.scorer import Scorer

    scores = Scorer.load(saved_scorer).score(["Great fun.", "Dull and long."])
    assert scores.shape == (2,) and scores[0] != scores[1]


POLICY_DAMAGE = {
    "no card": ("condtune_policy.json", lambda p: p.unlink(), "not a condtune policy (no condtune_policy.json)"),
    "card cut": ("condtune_policy.json", lambda p: _truncate(p, 50), "policy card is not valid JSON"),
    "card without bins": (
        "condtune_policy.json",
        lambda p: _edit_json(p, lambda d: d.pop("binning")),
        "missing key 'binning'",
    ),
    "bins without edges": (
        "condtune_policy.json",
        lambda p: _edit_json(p, lambda d: d["binning"].pop("edges")),
        "binning is missing ['edges']",
    ),
    "bins out of order": (
        "condtune_policy.json",
        lambda p: _edit_json(p, lambda d: d["binning"].update(edges=[1.0, 0.0], centers=[0, 1, 2])),
        "edges must be ascending",
    ),
    "weights cut": ("model.safetensors", lambda p: _truncate(p, 1000), "truncated or damaged safetensors"),
    "no weights": ("model.safetensors", lambda p: p.unlink(), "model folder has no weights"),
    "config cut": ("config.json", lambda p: _truncate(p, 20), "config is not valid JSON"),
    "no config": ("config.json", lambda p: p.unlink(), "config missing"),
    "no tokenizer": ("tokenizer.json", lambda p: p.unlink(), "has no tokenizer files"),
}


@pytest.mark.parametrize("case", list(POLICY_DAMAGE))
def test_a_damaged_policy_folder_is_a_one_line_error(case, saved_policy, tmp_path, capsys):
    name, damage, says = POLICY_DAMAGE[case]
    policy = shutil.copytree(saved_policy, tmp_path / "policy")
    damage(policy / name)
    args = ["generate", f"model={policy}", "score=0.5", "num_return_sequences=1", "sampling.max_new_tokens=2"]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert _error_line(err, "generate") and says in _error_line(err, "generate"), err
    assert str(policy) in err


def test_an_intact_policy_still_generates(saved_policy, capsys):
    assert (
        cli(
            [
                "generate",
                f"model={saved_policy}",
                "score=0.5",
                "num_return_sequences=1",
                "sampling.max_new_tokens=2",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.splitlines()[0])["bin"] == 2


def test_a_damaged_tag_card_or_run_file_names_itself(tmp_path):
    from condtune.io import read_json

    card = tmp_path / "t.jsonl.card.json"
    card.write_text('{"binning": {"edges": [0.0], "cent')
    with pytest.raises(ArtifactError, match=r"t.jsonl.card.json: tag card is not valid JSON"):
        TagCard.load(tmp_path / "t.jsonl")
    run = tmp_path / "run_identity.json"
    run.write_text('{"rows": 8, "data_dig')
    with pytest.raises(ValueError, match=r"run_identity.json: not valid JSON .*truncated or damaged"):
        read_json(run)
