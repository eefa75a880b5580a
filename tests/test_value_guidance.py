"""research/value_guidance.py: the candidates' hidden states read on the prefix's cache are
a full pass's, reading them leaves the generation untouched, and the KL it reports is the exact KL
of the distribution it samples from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from research import value_guidance as vg

PROMPTS = ["Movie review: tale will", "Movie review: The"]  # two lengths: the batch is left padded


@pytest.fixture(scope="module")
def lm(tiny_lm):
    from condtune.modeling import load_causal_lm

    model, tok = load_causal_lm(tiny_lm)
    return model.eval(), tok


class _Linear:
    def __init__(self, w: torch.Tensor):
        self.w = w

    def __call__(self, h):
        return h.float() @ self.w


def test_candidates_on_the_cache_are_a_full_pass(lm):
    model, tok = lm
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    mask = enc["attention_mask"]
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    k, n_layers = 3, 1
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        cand = out.logits[:, -1].topk(k, -1).indices
        past = cache.layers[0].keys.shape[-2]
        h = vg.candidate_states(model, cand, mask=mask, last=pos[:, -1], cache=cache, n_layers=n_layers)
        assert all(layer.keys.shape[-2] == past for layer in cache.layers)  # the candidates are gone again
        for i, p in enumerate(PROMPTS):
            ids = tok(p, add_special_tokens=False)["input_ids"]
            for j in range(k):
                seq = torch.tensor([ids + [int(cand[i, j])]])
                full = model(input_ids=seq, output_hidden_states=True).hidden_states[n_layers][0, -1]
                assert torch.allclose(h[i, j], full, atol=1e-4)


def test_a_probe_that_says_nothing_changes_nothing(lm):
    """g > 0 with a zero probe: the candidates are read (and dropped from the cache) at every step,
    yet the samples are those of g = 0 with the same seed, at zero KL."""
    model, tok = lm
    zero = _Linear(torch.zeros(model.config.hidden_size))
    kw = dict(n_layers=1, k=4, max_new=6, n=2, seed=3)
    plain, kl0 = vg.value_sample(model, tok, PROMPTS, zero, g=0.0, **kw)
    read, kl1 = vg.value_sample(model, tok, PROMPTS, zero, g=1.0, **kw)
    assert read == plain and np.allclose(kl0, 0) and np.allclose(kl1, 0, atol=1e-6)


def test_the_reported_kl_is_the_sampled_distributions(lm):
    """One token: the KL reported is KL(q || base) of q = softmax(lp + g (r - r_bar)) on the top k."""
    model, tok = lm
    k, g, n_layers = 5, 20.0, 1
    ids = tok(PROMPTS[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # a random probe whose rewards are of order one on this model's hidden states
        scale = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[n_layers].std()
    torch.manual_seed(0)
    w = torch.randn(model.config.hidden_size) / (scale * model.config.hidden_size**0.5)
    _, kl = vg.value_sample(model, tok, PROMPTS[:1], _Linear(w), g=g, k=k, n_layers=n_layers, max_new=1, n=1, seed=0)
    with torch.no_grad():
        lp = F.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
        top, cand = lp.topk(k)
        r = torch.stack(
            [
                model(input_ids=torch.tensor([ids + [int(c)]]), output_hidden_states=True).hidden_states[n_layers][
                    0, -1
                ]
                @ w
                for c in cand
            ]
        )
        r = r - (F.softmax(top, -1) * r).sum()
        lq = F.log_softmax(lp.scatter_add(0, cand, g * r), -1)
        want = float((lq.exp() * (lq - lp)).sum())
    assert want > 1e-3 and kl[0] == pytest.approx(want, rel=1e-3)
