"""Fast unit tests of the benchmark's measures: exact KL, best-of-n picks and KL, DPO pairs,
prompts/review text, and the report on synthetic results."""
from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from condtune.baselines.best_of_n import group_picks
from condtune.baselines.dpo import build_pairs
from condtune.bench import metrics as BM
from condtune.bench.report import aggregate, flat_rows, headline, write_report
from condtune.bench.runner import make_prompt, review_text
from condtune.sampling import SamplingConfig


@pytest.fixture(scope="module")
def lm(tiny_lm):
    from condtune.modeling import load_causal_lm

    return load_causal_lm(tiny_lm)


@pytest.fixture(scope="module")
def perturbed(lm):
    model = copy.deepcopy(lm[0])
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_token_kl_matches_definition_and_is_zero_on_itself():
    torch.manual_seed(0)
    lp, lq = F.log_softmax(torch.randn(3, 7), -1), F.log_softmax(torch.randn(3, 7), -1)
    want = (lp.exp() * (lp - lq)).sum(-1)
    assert torch.allclose(BM.token_kl(lp, lq), want, atol=1e-6)
    assert (BM.token_kl(lp, lq) > 0).all()
    assert torch.allclose(BM.token_kl(lp, lp), torch.zeros(3), atol=1e-6)


def test_token_kl_over_the_shared_vocabulary_when_the_policy_has_extra_tokens():
    torch.manual_seed(0)
    lq = F.log_softmax(torch.randn(2, 5), -1)
    extra = torch.cat([lq + math.log(0.9), torch.full((2, 1), math.log(0.1))], -1)  # same shape on the shared 5, 10% on a new token
    assert torch.allclose(BM.token_kl(extra, lq), torch.zeros(2), atol=1e-5)


def _brute_force_kl(policy, ref, pctx, rctx, resp):
    """Unbatched, unpadded: one forward per sequence, full distributions at each response position."""
    total = 0.0
    with torch.no_grad():
        lp = F.log_softmax(policy(torch.tensor([pctx + resp])).logits[0, len(pctx) - 1 : -1].float(), -1)
        lq = F.log_softmax(ref(torch.tensor([rctx + resp])).logits[0, len(rctx) - 1 : -1].float(), -1)
    for t in range(len(resp)):
        total += float((lp[t].exp() * (lp[t] - lq[t])).sum())
    return total


def test_exact_kl_batched_with_padding_equals_brute_force(lm, perturbed):
    model, tok = lm
    rng = np.random.default_rng(0)
    pctx = [tok("Rating: 5 out of 5 stars.\nMovie review:", add_special_tokens=False)["input_ids"], tok("Movie review: A", add_special_tokens=False)["input_ids"]]
    rctx = [tok("Movie review:", add_special_tokens=False)["input_ids"], tok("Movie review: A", add_special_tokens=False)["input_ids"]]
    resp = [rng.integers(100, 1000, 7).tolist(), rng.integers(100, 1000, 3).tolist()]  # different lengths: padding matters
    got = BM.exact_kl(perturbed, model, pctx, rctx, resp, tok.pad_token_id, batch_size=2)
    want = [_brute_force_kl(perturbed, model, pctx[i], rctx[i], resp[i]) for i in range(2)]
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)
    assert (got > 0).all()
    same = BM.exact_kl(model, model, rctx, rctx, resp, tok.pad_token_id, batch_size=1)
    assert np.allclose(same, 0.0, atol=1e-5)
    per = BM.exact_token_kl(perturbed, model, pctx, rctx, resp, tok.pad_token_id, batch_size=2)
    assert [len(k) for k in per] == [7, 3] and (np.concatenate(per) >= 0).all()
    assert np.allclose([k.sum() for k in per], want, rtol=1e-4, atol=1e-5)


def test_exact_kl_temperature_and_empty_response(lm, perturbed):
    model, tok = lm
    ctx = [tok("Movie review:", add_special_tokens=False)["input_ids"]] * 2
    resp = [[500, 600, 700], []]
    hot = BM.exact_kl(perturbed, model, ctx, ctx, resp, tok.pad_token_id, temperature=1.0)
    flat = BM.exact_kl(perturbed, model, ctx, ctx, resp, tok.pad_token_id, temperature=50.0)
    assert hot[1] == 0.0 and flat[0] < hot[0]  # a high temperature flattens both distributions toward uniform


def test_sample_ids_trims_at_eos_and_decodes(lm):
    model, tok = lm
    r = BM.sample_ids(model, tok, ["Movie review:", "Movie review: The film"], 3, SamplingConfig(max_new_tokens=6, batch_size=4), seed=0)
    assert r.prompt_index == [0, 0, 0, 1, 1, 1] and len(r.texts) == 6
    for ids, text in zip(r.response_ids, r.texts):
        assert 1 <= len(ids) <= 6
        assert tok.eos_token_id not in ids[:-1]
        assert text == tok.decode(ids, skip_special_tokens=True).strip()
    again = BM.sample_ids(model, tok, ["Movie review:", "Movie review: The film"], 3, SamplingConfig(max_new_tokens=6, batch_size=4), seed=0)
    assert again.response_ids == r.response_ids  # seeded


def test_trim_at_eos():
    assert BM.trim_at_eos([5, 6, 2, 7, 2], 2) == [5, 6, 2]
    assert BM.trim_at_eos([5, 6], 2) == [5, 6]


def test_best_of_n_kl_and_group_picks():
    assert BM.best_of_n_kl(1) == 0.0
    assert BM.best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert BM.best_of_n_kl(64) < math.log(64)
    scores = np.array([[0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    assert group_picks(scores, 8) == [(0, 1), (1, 7)]
    assert group_picks(scores, 4) == [(0, 1), (0, 7), (1, 0), (1, 7)]
    assert len(group_picks(scores, 1)) == 16
    assert group_picks(scores, 3) == [(0, 1), (0, 4), (1, 0), (1, 3)]  # the remainder (6, 7) is not a full group


def test_build_pairs_respects_margin_and_orders_by_rating():
    items = pd.DataFrame({"prompt": ["P:"] * 6, "completion": list("abcdef"), "score": [-2.0, -1.0, 0.0, 0.5, 1.5, 3.0]})
    pairs = build_pairs(items, 40, 1.5, seed=0)
    s = dict(zip(items["completion"], items["score"]))
    assert len(pairs) == 40 and (pairs["prompt"] == "P:").all()
    assert all(s[c] - s[r] >= 1.5 for c, r in zip(pairs["chosen"], pairs["rejected"]))
    with pytest.raises(ValueError, match="margin"):
        build_pairs(items, 10, 9.0)


def test_prompts_and_review_text():
    head = "Movie review:"
    assert make_prompt(head, "The acting was superb throughout", 2) == "Movie review: The acting"
    assert make_prompt(head, "Great", 0) == head
    assert review_text("Movie review: The acting", " was superb.", head) == "The acting was superb."
    assert review_text(head, "Dull.", head) == "Dull."


def _synthetic_rows():
    rows = []
    for seed in (0, 1, 2):
        for method, steps, gold, kl in (("ppo", [10, 20], [0.2, 0.5], [1.0, 3.0]), ("best_of_n", [1, 4], [0.0, 0.3], [0.0, BM.best_of_n_kl(4)]),
                                        ("conditional", [40], [0.4], [2.0])):
            for st, g, k in zip(steps, gold, kl):
                row = {"method": method, "seed": seed, "checkpoint": f"step_{st}" if method != "best_of_n" else f"n_{st}", "step": st,
                       BM.GOLD: g + 0.01 * seed, BM.PROXY: g + 0.5, BM.KL: k, BM.DISTINCT_1: 0.8, BM.DISTINCT_2: 0.9,
                       BM.WALL: 100.0 * st if method == "ppo" else 50.0, BM.TOKENS: 10, BM.CALLS: 5, f"{BM.GOLD}_sd": 1.0}
                if method == "conditional":
                    targets = [{"requested": r, "bin": b + 1, BM.GOLD: r + 0.1 * seed, f"{BM.GOLD}_sd": 0.5, BM.PROXY: r} for b, r in enumerate([-1.0, 0.0, 1.0])]
                    row.update({"targets": targets, BM.COND_SPEARMAN_GOLD: 0.5, BM.COND_SPEARMAN_PROXY: 0.6, BM.COND_MAE_GOLD: 1.0,
                                BM.COND_MONOTONE: True})
                rows.append(row)
    return rows


def test_report_aggregates_over_seeds_and_writes_every_file(tmp_path):
    rows = _synthetic_rows()
    agg = aggregate(flat_rows(rows))
    ppo20 = agg[(agg["method"] == "ppo") & (agg["step"] == 20)].iloc[0]
    assert ppo20["seeds"] == 3 and ppo20[BM.GOLD + "_mean"] == pytest.approx(0.51) and ppo20[BM.GOLD + "_sd"] == pytest.approx(0.01)
    text = headline(agg, pd.DataFrame(rows), {"conditional": {"spearman_gold": 0.7, "per_bin": [], "mae_gold": 1.0, "monotone_gold": True}})
    assert "| conditional | step_40 | 0.03 | 0.80 | 0.80 |" in text  # 50/2000 of PPO's wall-clock; (0.41-0.01)/(0.51-0.01)
    assert "3/3 seeds" in text and "+0.700" in text
    ceiling = {"spearman_gold": 0.7, "mae_gold": 1.0, "monotone_gold": True, "per_bin": [{"requested": -1.0, "bin": 1, "gold_mean": -0.9, "gold_sd": 1.0, "n": 50}]}
    paths = write_report(tmp_path, rows, {"conditional": ceiling}, "condtune bench x")
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0, p
    assert paths["frontier.png"].read_bytes()[:4] == b"\x89PNG"
    md = paths["table.md"].read_text()
    assert "| ppo | step_20 | 3 | +0.510 ± 0.010 |" in md and "-0.900 ± 1.000 (50)" in md
    assert len(pd.read_csv(paths["targets.csv"])) == 9 and len(pd.read_csv(paths["results.csv"])) == len(rows)
