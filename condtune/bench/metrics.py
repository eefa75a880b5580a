"""Benchmark measures: sampling that keeps token ids, exact token-level KL(pi || pi_ref) on
those samples, the best-of-n KL bound, and per-set summaries (rewards, distinct-n).

Exact KL
--------
For a sampled response y = (y_1..y_T) (up to and including the first EOS) the benchmark
reports

    KL(y) = sum_t sum_v pi(v | x, y_<t) * (log pi(v | x, y_<t) - log pi_ref(v | x_ref, y_<t))

using the *full* next-token distributions of both models at every generated position, and
averages it over samples. Its expectation under y ~ pi is the sequence-level KL(pi || pi_ref);
unlike the sampled log-ratio sum_t log pi(y_t)/pi_ref(y_t) it is never negative per token and
has much lower variance. The policy and the reference may see different contexts (a
conditioned policy reads its tags, the reference the plain prompt). Both distributions are at
the sampling temperature; with temperature 1 and top_p 1 (the benchmark's defaults) that is
exactly the distribution the samples came from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from condtune.metrics import distinct_n
from condtune.modeling import autocast
from condtune.sampling import SamplingConfig, sample, trim_at_eos  # noqa: F401 (trim_at_eos re-exported)

# fixed metric names shared by runner, report and docs
GOLD, PROXY, KL = "reward/gold", "reward/proxy", "kl/exact"
DISTINCT_1, DISTINCT_2 = "diversity/distinct_1", "diversity/distinct_2"
WALL, TOKENS, CALLS = "cost/wall_clock_s", "cost/generated_tokens", "cost/scorer_calls"
COND_SPEARMAN_GOLD, COND_SPEARMAN_PROXY = "cond/spearman_gold", "cond/spearman_proxy"
COND_MAE_GOLD, COND_MAE_PROXY, COND_MONOTONE = "cond/mae_gold", "cond/mae_proxy", "cond/monotone_gold"


@dataclass
class Rollout:
    """Flat samples, prompt-major: ``prompt_index[i]`` is the prompt of ``texts[i]``."""

    prompt_index: list[int]
    response_ids: list[list[int]]
    texts: list[str]

    @property
    def n_tokens(self) -> list[int]:
        return [len(r) for r in self.response_ids]


@torch.no_grad()
def sample_ids(model, tok, prompts: Sequence[str], n: int, cfg: SamplingConfig, seed: int | None = None) -> Rollout:
    """``n`` samples per prompt from :func:`condtune.sampling.sample`, flattened prompt-major,
    keeping the response token ids (needed for exact KL)."""
    s = sample(model, tok, prompts, n, cfg, seed=seed, progress=False)
    flat = [i for i in range(len(prompts)) for _ in range(n)]
    return Rollout(flat, [ids for row in s.response_ids for ids in row], [t for row in s.texts for t in row])


def _right_padded(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def _response_logprobs(model, contexts: list[list[int]], responses: list[list[int]], pad_id: int, temperature: float) -> list[torch.Tensor]:
    """Per row, log-softmax over the vocabulary at each position that predicts a response token: [T_i, V]."""
    ids, mask = _right_padded([c + r for c, r in zip(contexts, responses)], pad_id)
    dev = next(model.parameters()).device
    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False).logits.float()
    out = []
    for i, (c, r) in enumerate(zip(contexts, responses)):
        rows = logits[i, len(c) - 1 : len(c) + len(r) - 1]
        out.append(F.log_softmax(rows / max(temperature, 1e-6), dim=-1).cpu())
    return out


def token_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Exact KL(p || q) per position from two [T, V] log-prob tables. Vocabularies may differ
    (a policy with added tag tokens): the KL is then over the shared vocabulary, with p
    renormalised on it."""
    v = min(logp.shape[-1], logq.shape[-1])
    if logp.shape[-1] != v:
        logp = torch.log_softmax(logp[..., :v], -1)
    logq = logq[..., :v] if logq.shape[-1] != v else logq
    return (logp.exp() * (logp - logq)).sum(-1).clamp_min(0.0)


@torch.no_grad()
def exact_token_kl(policy, ref, policy_contexts: list[list[int]], ref_contexts: list[list[int]], responses: list[list[int]],
                   pad_id: int, temperature: float = 1.0, batch_size: int = 8) -> list[np.ndarray]:
    """Exact KL(pi || pi_ref) at each generated position of each response (empty for an empty response)."""
    policy.eval(), ref.eval()
    out = [np.zeros(0) for _ in responses]
    keep = [i for i, r in enumerate(responses) if len(r)]
    for start in range(0, len(keep), batch_size):
        idx = keep[start : start + batch_size]
        with autocast(False):
            lp = _response_logprobs(policy, [policy_contexts[i] for i in idx], [responses[i] for i in idx], pad_id, temperature)
            lq = _response_logprobs(ref, [ref_contexts[i] for i in idx], [responses[i] for i in idx], pad_id, temperature)
        for j, i in enumerate(idx):
            out[i] = token_kl(lp[j], lq[j]).numpy()
    return out


def exact_kl(policy, ref, policy_contexts: list[list[int]], ref_contexts: list[list[int]], responses: list[list[int]],
             pad_id: int, temperature: float = 1.0, batch_size: int = 8) -> np.ndarray:
    """Summed exact token-level KL(pi || pi_ref) of each response (0 for an empty response)."""
    per = exact_token_kl(policy, ref, policy_contexts, ref_contexts, responses, pad_id, temperature, batch_size)
    return np.array([float(k.sum()) for k in per])


def best_of_n_kl(n: int) -> float:
    """The analytic KL of best-of-n sampling to the base policy, log n - (n-1)/n (Stiennon et
    al. 2020; an upper bound, Beirami et al. 2024). Best-of-n is not an autoregressive policy,
    so it has no token-level KL."""
    return math.log(n) - (n - 1) / n


def text_stats(texts: Sequence[str], gold: np.ndarray, proxy: np.ndarray, kl: np.ndarray, n_tokens: Sequence[int]) -> dict:
    """The per-set measures of one checkpoint (or one requested target)."""
    return {
        GOLD: float(np.mean(gold)), f"{GOLD}_sd": float(np.std(gold, ddof=1)) if len(gold) > 1 else 0.0,
        PROXY: float(np.mean(proxy)), f"{PROXY}_sd": float(np.std(proxy, ddof=1)) if len(proxy) > 1 else 0.0,
        KL: float(np.mean(kl)), f"{KL}_sd": float(np.std(kl, ddof=1)) if len(kl) > 1 else 0.0,
        DISTINCT_1: distinct_n(texts, 1), DISTINCT_2: distinct_n(texts, 2),
        "eval/n_samples": int(len(texts)), "eval/mean_tokens": float(np.mean(n_tokens)) if len(n_tokens) else 0.0,
    }
