"""Shared fixtures: tiny random models with the real tokenizers, and small ratings files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

WORDS_POS = ["great", "wonderful", "superb", "lovely", "brilliant", "moving", "fun"]
WORDS_NEG = ["awful", "boring", "terrible", "dull", "weak", "bad", "tedious"]


def run_cli(capsys, args: list[str]) -> tuple[int, str]:
    """``condtune args`` in-process: (exit code, stderr); a traceback on stderr fails the test."""
    from condtune.cli import main as cli

    rc = cli(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def later_wins(argv: list[str]) -> list[str]:
    """A command line whose later ``key=value`` replaces an earlier one, and the settings under it
    (``optim=fast`` drops an earlier ``optim.num_train_epochs=...``): tests that add a setting to a base command line
    go through this, since the CLI refuses a setting given twice."""
    keys = [a.split("=", 1)[0] if "=" in a and not a.startswith("-") else None for a in argv]

    def replaced(i: int) -> bool:
        return keys[i] is not None and any(k == keys[i] or keys[i].startswith(f"{k}.") for k in keys[i + 1 :] if k)

    return [a for i, a in enumerate(argv) if not replaced(i)]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer, saved to a directory."""
    from condtune.assets import smollm2_path
    from condtune.testing import save_tiny_causal_lm

    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"), smollm2_path(), hidden=64, layers=2)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    from condtune.assets import minilm_path
    from condtune.testing import save_tiny_encoder

    return save_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder"), minilm_path())


def make_ratings(n_items: int = 60, raters: int = 4, seed: int = 0) -> list[dict]:
    """Synthetic pointwise ratings: positive words score high, with per-rater offsets."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        pos = i % 2 == 0
        words = rng.choice(WORDS_POS if pos else WORDS_NEG, size=3)
        text = f"The film was {words[0]}, {words[1]} and {words[2]}."
        for r in range(raters):
            base = 2.0 if pos else -2.0
            score = float(np.clip(round(base + (r - 1.5) * 0.5 + rng.normal(0, 0.5)), -4, 4))
            rows.append({"item_id": f"i{i}", "text": text, "score": score, "rater": f"r{r}"})
    return rows


@pytest.fixture
def ratings_file(tmp_path) -> Path:
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_ratings()))
    return path


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    rows = []
    for i in range(40):
        rows.append(
            {
                "prompt": "Review:",
                "chosen": f"It was {WORDS_POS[i % 7]} and {WORDS_POS[(i + 2) % 7]}.",
                "rejected": f"It was {WORDS_NEG[i % 7]} and {WORDS_NEG[(i + 3) % 7]}.",
            }
        )
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
