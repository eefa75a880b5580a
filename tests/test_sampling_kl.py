"""The sampling distribution is written once (shape_logprobs): the sampler draws from it and the
exact KL measures it. Tests against transformers' warpers, brute force and an empirical check."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from condtune.kl import best_of_n_kl, sampled_kl, sampled_token_kl, token_kl
from condtune.sampling import SamplingConfig, sample, shape_logprobs, trim_at_eos


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


def test_shape_logprobs_matches_transformers_temperature_and_top_p():
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    torch.manual_seed(0)
    logits = 3 * torch.randn(4, 50)
    for t, p in ((1.0, 1.0), (0.7, 1.0), (1.3, 0.9), (0.8, 0.5)):
        want = TopPLogitsWarper(p)(None, TemperatureLogitsWarper(t)(None, logits.clone())) if p < 1 else logits / t
        got = shape_logprobs(logits, temperature=t, top_p=p)
        assert torch.equal(torch.isinf(got), torch.isinf(want))
        assert torch.allclose(got.exp(), F.softmax(want, -1), atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        shape_logprobs(logits, temperature=0)


def test_shape_logprobs_guidance_is_the_cfg_formula():
    torch.manual_seed(0)
    c, u = torch.randn(2, 30), torch.randn(2, 30)
    lc, lu = F.log_softmax(c, -1), F.log_softmax(u, -1)
    want = F.log_softmax(2.5 * (lc - lu) + lu, -1)
    assert torch.allclose(shape_logprobs(c, u, guidance=2.5), want, atol=1e-6)
    assert torch.allclose(shape_logprobs(c, u, guidance=1.0), lc, atol=1e-6)  # guidance 1 is the conditional model


def test_anchored_guidance_moves_the_anchor_by_the_tag_contrast():
    torch.manual_seed(0)
    c, u, a = torch.randn(2, 30), torch.randn(2, 30), torch.randn(2, 28)  # the anchor lacks 2 added tag tokens
    lc, lu = F.log_softmax(c, -1), F.log_softmax(u, -1)
    la = F.pad(F.log_softmax(a, -1), (0, 2), value=float("-inf"))
    want = F.log_softmax(la + 2.0 * (lc - lu), -1)
    got = shape_logprobs(c, u, guidance=2.0, anchor_logits=a)
    assert torch.allclose(got[:, :28], want[:, :28], atol=1e-6) and torch.isinf(got[:, 28:]).all()
    assert torch.allclose(
        shape_logprobs(c, c, guidance=3.0, anchor_logits=a)[:, :28], F.log_softmax(a, -1), atol=1e-6
    )  # no contrast: the anchor
    with pytest.raises(ValueError, match="unconditional"):
        shape_logprobs(c, None, anchor_logits=a)


def test_sampler_draws_from_the_anchored_distribution(lm, perturbed):
    model, tok = lm
    prompt, uncond = "Rating: 5 out of 5 stars.\nMovie review:", "Movie review:"
    cfg = SamplingConfig(max_new_tokens=1, temperature=0.05, top_p=1.0, batch_size=100, bf16=False)
    s = sample(
        perturbed,
        tok,
        [prompt],
        n=400,
        cfg=cfg,
        seed=0,
        progress=False,
        uncond_prompts=[uncond],
        guidance=1.5,
        anchor_model=model,
        anchor_prompts=[uncond],
    )
    drawn = np.bincount([ids[0] for ids in s.response_ids[0]], minlength=len(tok))
    enc = lambda m, t: m(**tok([t], return_tensors="pt", add_special_tokens=False)).logits[0, -1]  # noqa: E731
    with torch.no_grad():
        probs = (
            shape_logprobs(
                enc(perturbed, prompt),
                enc(perturbed, uncond),
                guidance=1.5,
                temperature=0.05,
                anchor_logits=enc(model, uncond),
            )
            .exp()
            .numpy()
        )
    top = np.argsort(-probs)[:3]
    assert np.allclose(drawn[top] / 400, probs[top], atol=0.08)


def test_sampler_draws_from_the_shaped_distribution(lm):
    """One new token, many draws: the empirical frequencies match shape_logprobs (guided, T, top-p)."""
    model, tok = lm
    prompt, uncond = "Rating: 5 out of 5 stars.\nMovie review:", "Movie review:"
    cfg = SamplingConfig(max_new_tokens=1, temperature=0.05, top_p=0.9, batch_size=100, bf16=False)
    s = sample(model, tok, [prompt], n=400, cfg=cfg, seed=0, progress=False, uncond_prompts=[uncond], guidance=2.0)
    drawn = np.bincount([ids[0] for ids in s.response_ids[0]], minlength=len(tok))
    with torch.no_grad():
        lc = model(**tok([prompt], return_tensors="pt", add_special_tokens=False)).logits[0, -1]
        lu = model(**tok([uncond], return_tensors="pt", add_special_tokens=False)).logits[0, -1]
    probs = shape_logprobs(lc, lu, guidance=2.0, temperature=0.05, top_p=0.9).exp().numpy()
    support = np.flatnonzero(probs > 0)
    assert set(np.flatnonzero(drawn)) <= set(support)  # nothing outside the nucleus
    top = np.argsort(-probs)[:3]
    assert np.allclose(drawn[top] / 400, probs[top], atol=0.08)


def _brute_force_kl(policy, ref, ctx, rctx, resp, t=1.0, p=1.0, g=1.0, uctx=None, anchored=False):
    with torch.no_grad():
        lp = policy(torch.tensor([ctx + resp])).logits[0, len(ctx) - 1 : -1]
        lu = policy(torch.tensor([uctx + resp])).logits[0, len(uctx) - 1 : -1] if uctx else None
        lq = F.log_softmax(ref(torch.tensor([rctx + resp])).logits[0, len(rctx) - 1 : -1].float(), -1)
    total = 0.0
    for i in range(len(resp)):
        dist = shape_logprobs(
            lp[i],
            None if lu is None else lu[i],
            guidance=g,
            temperature=t,
            top_p=p,
            anchor_logits=lq[i] if anchored else None,
        )
        q = dist.exp()
        total += float(torch.where(q > 0, q * (dist - lq[i]), torch.zeros_like(q)).sum())
    return total


def test_sampled_kl_batched_with_padding_equals_brute_force(lm, perturbed):
    model, tok = lm
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    ctx = [enc("Rating: 5 out of 5 stars.\nMovie review:"), enc("Rating: 1 out of 5 stars.\nMovie review: A")]
    unc = [enc("Movie review:"), enc("Movie review: A")]
    rng = np.random.default_rng(0)
    resp = [
        rng.integers(100, 1000, 7).tolist(),
        rng.integers(100, 1000, 3).tolist(),
    ]  # different lengths: padding matters
    for t, p, g in ((1.0, 1.0, 1.0), (0.7, 0.9, 1.0), (1.0, 1.0, 2.0), (0.8, 0.95, 1.5)):
        got = sampled_kl(
            perturbed,
            model,
            contexts=ctx,
            ref_contexts=unc,
            responses=resp,
            pad_id=tok.pad_token_id,
            temperature=t,
            top_p=p,
            guidance=g,
            uncond_contexts=unc,
            batch_size=2,
        )
        want = [_brute_force_kl(perturbed, model, ctx[i], unc[i], resp[i], t, p, g, unc[i]) for i in range(2)]
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4), (t, p, g)
        assert (got > 0).all()
    for g in (1.0, 2.0):  # anchored on the reference itself
        got = sampled_kl(
            perturbed,
            model,
            contexts=ctx,
            ref_contexts=unc,
            responses=resp,
            pad_id=tok.pad_token_id,
            guidance=g,
            uncond_contexts=unc,
            anchored=True,
        )
        want = [
            _brute_force_kl(perturbed, model, ctx[i], unc[i], resp[i], g=g, uctx=unc[i], anchored=True)
            for i in range(2)
        ]
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4), g
    per = sampled_token_kl(
        perturbed, model, contexts=ctx, ref_contexts=unc, responses=resp, pad_id=tok.pad_token_id, batch_size=2
    )
    assert [len(k) for k in per] == [7, 3] and (np.concatenate(per) >= 0).all()


def test_kl_is_zero_only_for_the_reference_itself_at_temperature_one(lm):
    """The reference is always read at temperature 1: sampling it at another temperature is a
    different distribution, and its KL is no longer zero."""
    model, tok = lm
    ctx = [tok("Movie review:", add_special_tokens=False)["input_ids"]] * 2
    resp = [[500, 600, 700], []]
    same = sampled_kl(model, model, contexts=ctx, ref_contexts=ctx, responses=resp, pad_id=tok.pad_token_id)
    assert np.allclose(same, 0.0, atol=1e-5) and same[1] == 0.0
    assert (
        sampled_kl(
            model, model, contexts=ctx, ref_contexts=ctx, responses=resp, pad_id=tok.pad_token_id, temperature=0.5
        )[0]
        > 0.01
    )
    assert (
        sampled_kl(model, model, contexts=ctx, ref_contexts=ctx, responses=resp, pad_id=tok.pad_token_id, top_p=0.5)[0]
        > 0.01
    )
    with pytest.raises(ValueError, match="unconditional"):
        sampled_kl(model, model, contexts=ctx, ref_contexts=ctx, responses=resp, pad_id=tok.pad_token_id, guidance=2.0)


def test_token_kl_ignores_tokens_outside_the_nucleus_and_extra_vocabulary():
    torch.manual_seed(0)
    lq = F.log_softmax(torch.randn(2, 5), -1)
    lp = lq.clone()
    lp[:, 0] = float("-inf")
    lp = F.log_softmax(lp, -1)
    assert torch.isfinite(token_kl(lp, lq)).all() and (token_kl(lp, lq) > 0).all()
    extra = torch.cat([lq + np.log(0.9), torch.full((2, 1), float(np.log(0.1)))], -1)
    assert torch.allclose(token_kl(extra, lq), torch.zeros(2), atol=1e-5)


def test_sample_trims_at_eos_and_is_seeded(lm):
    model, tok = lm
    cfg = SamplingConfig(max_new_tokens=6, batch_size=4, bf16=False)
    s = sample(model, tok, ["Movie review:", "Movie review: The film"], n=3, cfg=cfg, seed=0, progress=False)
    for ids, text in zip(sum(s.response_ids, []), sum(s.texts, [])):
        assert 1 <= len(ids) <= 6 and tok.eos_token_id not in ids[:-1]
        assert text == tok.decode(ids, skip_special_tokens=True).strip()
    assert (
        sample(
            model, tok, ["Movie review:", "Movie review: The film"], n=3, cfg=cfg, seed=0, progress=False
        ).response_ids
        == s.response_ids
    )
    assert trim_at_eos([5, 6, 2, 7, 2], 2) == [5, 6, 2] and trim_at_eos([5, 6], 2) == [5, 6]
    assert best_of_n_kl(1) == 0.0 and best_of_n_kl(64) < np.log(64)
