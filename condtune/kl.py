"""Exact token-level KL of what was sampled, against a reference policy.

For a sampled response y = (y_1..y_T) (up to and including the first EOS):

    KL(y) = sum_t sum_v p(v | ., y_<t) * (log p(v | ., y_<t) - log pi_ref(v | x_ref, y_<t))

where ``p`` is the distribution the tokens were actually drawn from: the policy's next-token
distribution shaped by :func:`condtune.sampling.shape_logprobs` (guidance against the
unconditional prompt, temperature, top-p), and ``pi_ref`` is the reference at temperature 1 on
the plain prompt. Every term runs over the whole vocabulary, so KL(y) is never negative, and its
mean over samples estimates the sequence-level KL(p || pi_ref) with far less variance than the
sampled log-ratio. Both models run in fp32 here; sample in fp32 too (``SamplingConfig.bf16=False``)
to measure exactly the distribution that was sampled.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from condtune.modeling import autocast
from condtune.sampling import shape_logprobs


def token_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Exact KL(p || q) per position from two [T, V] log-prob tables; ``-inf`` entries of ``p``
    (outside a top-p nucleus) contribute nothing. Vocabularies may differ (a policy with added
    tag tokens): the KL is then over the shared vocabulary, with p renormalised on it."""
    v = min(logp.shape[-1], logq.shape[-1])
    if logp.shape[-1] != v:
        logp = torch.log_softmax(logp[..., :v], -1)
    logq = logq[..., :v] if logq.shape[-1] != v else logq
    p = logp.exp()
    terms = torch.where(p > 0, p * (logp - logq), torch.zeros_like(p))
    return terms.sum(-1).clamp_min(0.0)


def _right_padded(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def response_logits(
    model, contexts: Sequence[list[int]], responses: Sequence[list[int]], *, pad_id: int
) -> list[torch.Tensor]:
    """Per row, the fp32 logits at each position that predicts a response token: [T_i, V]."""
    ids, mask = _right_padded([list(c) + list(r) for c, r in zip(contexts, responses)], pad_id)
    dev = next(model.parameters()).device
    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False).logits.float()
    return [logits[i, len(c) - 1 : len(c) + len(r) - 1].cpu() for i, (c, r) in enumerate(zip(contexts, responses))]


@torch.no_grad()
def sampled_token_kl(
    policy,
    ref,
    *,
    contexts: Sequence[list[int]],
    ref_contexts: Sequence[list[int]],
    responses: Sequence[list[int]],
    pad_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    guidance: float = 1.0,
    uncond_contexts: Sequence[list[int]] | None = None,
    batch_size: int = 8,
    anchored: bool = False,
) -> list[np.ndarray]:
    """Exact KL(p || pi_ref) at each generated position of each response (empty for an empty one).

    ``contexts``: what the policy read (tags + prompt); ``uncond_contexts``: the guidance branch's
    prompt (needed when ``guidance != 1`` or ``anchored``); ``ref_contexts``: the plain prompt the
    reference reads. ``anchored``: the samples were drawn with guidance anchored on the reference
    itself (``pi_ref + g * (cond - uncond)``, see :func:`condtune.sampling.shape_logprobs`).
    """
    guided = guidance != 1.0 or anchored
    if guided and uncond_contexts is None:
        raise ValueError("guidance needs the unconditional contexts")
    policy.eval(), ref.eval()
    out = [np.zeros(0) for _ in responses]
    keep = [i for i, r in enumerate(responses) if len(r)]
    for start in range(0, len(keep), batch_size):
        idx = keep[start : start + batch_size]
        resp = [responses[i] for i in idx]
        with autocast(False):
            lp = response_logits(policy, [contexts[i] for i in idx], resp, pad_id=pad_id)
            lu = (
                response_logits(policy, [uncond_contexts[i] for i in idx], resp, pad_id=pad_id)
                if guided
                else [None] * len(idx)
            )
            lq = response_logits(ref, [ref_contexts[i] for i in idx], resp, pad_id=pad_id)
        for j, i in enumerate(idx):
            p = shape_logprobs(
                lp[j],
                lu[j],
                guidance=guidance,
                temperature=temperature,
                top_p=top_p,
                anchor_logits=lq[j] if anchored else None,
            )
            out[i] = token_kl(p, F.log_softmax(lq[j], -1)).numpy()
    return out


def sampled_kl(*args, **kwargs) -> np.ndarray:
    """Summed :func:`sampled_token_kl` of each response (0 for an empty response)."""
    return np.array([float(k.sum()) for k in sampled_token_kl(*args, **kwargs)])


def best_of_n_kl(n: int) -> float:
    """The analytic KL of best-of-n sampling to the base policy, log n - (n-1)/n (Stiennon et
    al. 2020; an upper bound, Beirami et al. 2024). Best-of-n is not an autoregressive policy,
    so it has no token-level KL."""
    return math.log(n) - (n - 1) / n
