"""research/contrast_quality.py: the ranking statistics of the tag contrast, and the answers'
log-likelihoods read in padded batches as they read one at a time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from research import contrast_quality as cq


def _answers():
    # two prompts, three answers each; the second prompt's answers all score higher
    return pd.DataFrame({"prompt": ["a"] * 3 + ["b"] * 3, "proxy": [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]})


def test_a_contrast_that_orders_answers_as_the_proxy_does_scores_one():
    df = _answers()
    q = cq.quality(df, df["proxy"].to_numpy() * 3.0)
    assert q["spearman"] == pytest.approx(1.0) and q["spearman_within"] == pytest.approx(1.0)
    assert q["pair_accuracy"] == 1.0 and q["pairs"] == 6  # 3 pairs a prompt, each gap > 0.5
    flipped = cq.quality(df, -df["proxy"].to_numpy())
    assert flipped["spearman_within"] == pytest.approx(-1.0) and flipped["pair_accuracy"] == 0.0


def test_within_prompts_ignores_what_only_tells_the_prompts_apart():
    df = _answers()
    s = np.array([0.0, 0.0, 0.0, 9.0, 9.0, 9.0])  # ranks the prompts, not one prompt's answers
    s = s + np.array([2.0, 1.0, 0.0, 2.0, 1.0, 0.0])  # and within each, backwards
    q = cq.quality(df, s)
    assert q["spearman"] > 0.5 and q["spearman_within"] < 0 and q["pair_accuracy"] == 0.0
    assert cq.quality(df, s, min_gap=1.5)["pairs"] == 2  # only the pairs 2 apart count


def test_answer_logprobs_batched_equal_one_at_a_time(tiny_lm):
    from condtune.modeling import load_causal_lm

    model, tok = load_causal_lm(tiny_lm)
    policy = SimpleNamespace(model=model, tokenizer=tok)
    prompts = ["Rating: 5 out of 5 stars.\nMovie review:", "Movie review: A"]
    answers = [tok(" Good fun, all of it.", add_special_tokens=False)["input_ids"], [tok.eos_token_id]]
    together = cq.answer_logprobs(policy, prompts, answers, batch=2)
    alone = np.concatenate([cq.answer_logprobs(policy, [p], [a], batch=1) for p, a in zip(prompts, answers)])
    assert together.shape == (2,) and np.allclose(together, alone, atol=1e-4)
    with torch.no_grad():  # one answer token: its log-probability after the prompt
        ids = tok(prompts[1], add_special_tokens=False)["input_ids"]
        lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)[tok.eos_token_id]
    assert alone[1] == pytest.approx(float(lp), abs=1e-4)
