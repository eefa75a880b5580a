"""PPO maths as small pure functions (torchtune ``rlhf/rewards.py`` style).

Shapes: ``B`` sequences, ``T`` response tokens. ``mask`` is 1 for real response tokens
(up to and including the first EOS) and 0 for padding after it. Nothing here touches a
model, a file or a global; every function is tested against hand-computed values in
``tests/baselines/test_rl_math.py``.

References: Schulman et al. 2017 (PPO), Schulman et al. 2016 (GAE), Ziegler et al. 2019
(KL-penalised reward, adaptive KL controller), Schulman 2020 "Approximating KL divergence"
(the k1/k2/k3 estimators).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

KLEstimator = Literal["k1", "k2", "k3"]

# Fixed, namespaced metric names shared by the PPO loop, its JSONL log and the benchmark.
METRIC_KL = "objective/kl"  # sum over tokens of k1 = log pi - log pi_ref, mean over sequences
METRIC_KL_K3 = "objective/kl_k3"  # same with the non-negative k3 estimator
METRIC_SCORES = "objective/scores"  # reward model score (after EOS/length penalties)
METRIC_RAW_SCORES = "objective/raw_scores"  # reward model score before penalties
METRIC_NON_SCORE = "objective/non_score_reward"  # -beta * KL, summed over tokens
METRIC_RLHF_REWARD = "objective/rlhf_reward"  # scores + non_score_reward
METRIC_ENTROPY = "objective/entropy"  # policy entropy per sequence (sum over tokens)
METRIC_KL_COEF = "objective/kl_coef"  # beta used for this rollout
METRIC_LOSS = "losses/total"
METRIC_POLICY_LOSS = "losses/policy"
METRIC_VALUE_LOSS = "losses/value"
METRIC_CLIPFRAC = "policy/clipfrac"
METRIC_APPROX_KL = "policy/approx_kl"
METRIC_RATIO = "policy/ratio"
METRIC_VALUE_CLIPFRAC = "value/clipfrac"
METRIC_GRAD_NORM = "policy/grad_norm"
METRIC_RESPONSE_LEN = "val/response_length"
METRIC_EOS_FRAC = "val/eos_fraction"
METRIC_TIME_ROLLOUT = "time/rollout"
METRIC_TIME_UPDATE = "time/update"
METRIC_TIME_STEP = "time/step"
METRIC_TIME_TOTAL = "time/total"


class Trajectory(NamedTuple):
    """One rollout, batch-first. ``query_responses[:, context_length:]`` are the responses."""

    query_responses: torch.Tensor  # (B, P+T) token ids, prompts left-padded
    attention_mask: torch.Tensor  # (B, P+T) 1 for real prompt and response tokens
    response_mask: torch.Tensor  # (B, T) 1 for response tokens up to and including EOS
    logprobs: torch.Tensor  # (B, T) log pi_old(token) at rollout time
    ref_logprobs: torch.Tensor  # (B, T) log pi_ref(token)
    values: torch.Tensor  # (B, T) V_old(state before token)
    scores: torch.Tensor  # (B,) reward model scores after penalties
    rewards: torch.Tensor  # (B, T) KL-penalised per-token rewards
    advantages: torch.Tensor  # (B, T)
    returns: torch.Tensor  # (B, T)


class PPOStats(NamedTuple):
    """Averages over every minibatch of one PPO update."""

    loss: float
    policy_loss: float
    value_loss: float
    clipfrac: float
    approx_kl: float
    ratio: float
    value_clipfrac: float
    grad_norm: float

    def metrics(self) -> dict[str, float]:
        """The stats under their logged metric names."""
        return {
            METRIC_LOSS: self.loss,
            METRIC_POLICY_LOSS: self.policy_loss,
            METRIC_VALUE_LOSS: self.value_loss,
            METRIC_CLIPFRAC: self.clipfrac,
            METRIC_APPROX_KL: self.approx_kl,
            METRIC_RATIO: self.ratio,
            METRIC_VALUE_CLIPFRAC: self.value_clipfrac,
            METRIC_GRAD_NORM: self.grad_norm,
        }


class PolicyLossOutput(NamedTuple):
    loss: torch.Tensor
    clipfrac: torch.Tensor
    approx_kl: torch.Tensor
    ratio: torch.Tensor  # mean ratio over real tokens


class ValueLossOutput(NamedTuple):
    loss: torch.Tensor
    clipfrac: torch.Tensor


# ---------------------------------------------------------------- masked statistics
def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over positions where ``mask`` is 1 (all of them, or along ``dim``)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp_min(1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over masked positions (Bessel-corrected when ``unbiased`` and there
    are at least two of them)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.to(x.dtype).sum()
    if unbiased and n >= 2:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Scale ``x`` to unit variance over masked positions; with ``shift_mean`` also to mean 0.

    Without ``shift_mean`` the mean is restored after scaling, so the sign of a reward survives.
    Masked-out positions come back as 0.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(x.dtype)


# ---------------------------------------------------------------- log-probs and KL
def logprobs_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[label] in float32: (B, T, V), (B, T) -> (B, T)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return torch.gather(logp, -1, labels.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: (B, T, V) -> (B, T)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: KLEstimator = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi (Schulman 2020).

    k1 = log r (unbiased, can be negative), k2 = (log r)^2 / 2 (biased, low variance),
    k3 = (r' - 1) - log r' with r' = pi_ref/pi (unbiased and non-negative); r = pi/pi_ref.
    """
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; expected k1, k2 or k3")


def response_mask_after_eos(responses: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, has_eos): mask is 1 up to and including the first EOS (all 1 without one)."""
    is_eos = responses == eos_id
    has_eos = is_eos.any(-1)
    T = responses.shape[1]
    first = torch.where(has_eos, is_eos.int().argmax(-1), torch.full_like(has_eos, T, dtype=torch.long))
    mask = torch.arange(T, device=responses.device)[None, :] <= first[:, None]
    return mask.long(), has_eos


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of a (B, T) prefix mask (0 for an empty row)."""
    return (mask.long().sum(-1) - 1).clamp_min(0)


def kl_penalised_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    *,
    mask: torch.Tensor,
    beta: float,
    kind: KLEstimator = "k1",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token reward R_hat_t = -beta * KL_t, plus the sequence score at its last real token.

    Returns ``(rewards, kl, non_score)``, each (B, T) and zero where ``mask`` is 0.
    """
    m = mask.to(logprobs.dtype)
    kl = kl_estimate(logprobs, ref_logprobs, kind) * m
    non_score = -beta * kl
    rewards = non_score.clone()
    rows = torch.arange(scores.shape[0], device=scores.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards.dtype)
    return rewards, kl, non_score


def penalise_scores(
    scores: torch.Tensor,
    has_eos: torch.Tensor,
    lengths: torch.Tensor,
    *,
    missing_eos_penalty: float | None = None,
    length_penalty: float = 0.0,
) -> torch.Tensor:
    """Subtract ``missing_eos_penalty`` from responses that hit the length limit without EOS,
    and ``length_penalty`` per response token from every response."""
    out = scores.clone().float()
    if missing_eos_penalty is not None:
        out = out - missing_eos_penalty * (~has_eos.bool()).float()
    return out - length_penalty * lengths.float()


# ---------------------------------------------------------------- advantages
def estimate_advantages(
    values: torch.Tensor,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    whiten: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens.

    delta_t = r_t + gamma V_{t+1} - V_t (V = 0 past the last real token),
    A_t = delta_t + gamma lam A_{t+1}; returns = A + V (before any whitening).
    Returns ``(advantages, returns)``, zero where ``mask`` is 0.
    """
    m = mask.to(values.dtype)
    values, rewards = values * m, rewards * m
    T = values.shape[-1]
    adv = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    adv = adv * m
    returns = adv + values
    if whiten:
        adv = masked_whiten(adv, mask)
    return adv, returns


# ---------------------------------------------------------------- losses
def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
) -> PolicyLossOutput:
    """Clipped surrogate: mean over real tokens of max(-A r, -A clip(r, 1-eps, 1+eps)).

    ``clipfrac`` is the fraction of tokens where the clipped term was the active one;
    ``approx_kl`` the k3 estimate of KL(pi_old || pi_new) over the minibatch.
    """
    log_ratio = logprobs - old_logprobs
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
        mean_ratio = masked_mean(ratio, mask)
    return PolicyLossOutput(loss=loss, clipfrac=clipfrac, approx_kl=approx_kl, ratio=mean_ratio)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    *,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
) -> ValueLossOutput:
    """Clipped value loss: 0.5 * mean over real tokens of max((V-R)^2, (V_clip-R)^2),
    where V_clip stays within ``clip_eps`` of the rollout-time value."""
    clipped_values = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    unclipped_err = (values - returns) ** 2
    clipped_err = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_err, clipped_err), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped_err > unclipped_err).float(), mask)
    return ValueLossOutput(loss, clipfrac)


# ---------------------------------------------------------------- KL controllers
class FixedKLController:
    """A constant beta."""

    def __init__(self, kl_coef: float):
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. 2019: beta *= 1 + clip(KL/target - 1, -0.2, 0.2) * n_steps / horizon.

    ``current_kl`` is the mean sequence-level KL of the last rollout, ``n_steps`` the number
    of sequences (episodes) it had; beta rises when KL is above target and falls below it.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target ({target}) and horizon ({horizon}) must be positive")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        if not math.isfinite(current_kl):
            return self.value
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])
