"""Fixtures for the PPO tests: a tiny random Llama (real SmolLM2 tokenizer) in which the
`title case` reward is linearly representable, and that reward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ppo_helpers import CAPITALISED


@pytest.fixture(scope="session")
def ppo_tiny_lm(tmp_path_factory) -> Path:
    """1 layer, hidden 32. A random model's embeddings share no direction, so no reward on a
    class of tokens is learnable in a few updates from 49k near-uniform arms; adding one
    common vector to the embeddings of capitalised tokens gives the class a direction the
    policy can turn toward (a stand-in for what pretraining gives a real model)."""
    from condtune.modeling import load_tokenizer
    from condtune.testing import tiny_causal_lm

    tok = load_tokenizer("smollm2-135m")
    model = tiny_causal_lm(tok, layers=1, hidden=32, seed=0)
    ids = [i for i in range(len(tok)) if CAPITALISED.match(tok.decode([i]))]
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        model.get_input_embeddings().weight[ids] += 0.04 * torch.randn(32, generator=g)
    out = tmp_path_factory.mktemp("ppo_tiny_lm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and suffer less from a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
