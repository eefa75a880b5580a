"""The worked recipes in recipes/ run as written (on tiny random models and synthetic ratings)."""

from __future__ import annotations

import json

from recipes import score_conditioned
from tests.conftest import make_ratings


def test_score_conditioned_runs_end_to_end(tmp_path, tiny_lm, tiny_encoder, ratings_file, capsys):
    texts = tmp_path / "texts.jsonl"
    rows = [{"prompt": "Review:", "completion": r["text"]} for r in make_ratings(n_items=40, raters=1)]
    texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    args = [f"--output-dir={out}", f"--ratings={ratings_file}", f"--backbone={tiny_encoder}", f"--data={texts}"]
    args += [f"--model={tiny_lm}", "--num-bins=3", "--max-steps=2", "--batch-size=4", "--max-new-tokens=3"]
    assert score_conditioned.main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("requested") == 4  # two samples at the top score, two at the bottom
    assert (out / "scorer" / "scorer.json").exists() and (out / "tagged.jsonl").exists()
    assert (out / "policy" / "condtune_policy.json").exists()
