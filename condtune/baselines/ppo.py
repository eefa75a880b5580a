"""PPO with a KL-penalised reward: condtune's own loop (trl removed PPO in 1.13).

One update, top to bottom (:func:`ppo_step`):

1. sample a batch of prompts; generate responses with the policy (left padding);
2. one no-grad pass each for the policy's log-probs and values, and for the frozen
   reference's log-probs (computed once per rollout);
3. score the completions with ``reward_fn`` and apply the optional EOS/length penalties;
4. R_hat_t = -beta * log(pi/pi_ref)_t, plus the score at the last real token; optional
   reward whitening; GAE advantages and returns;
5. ``ppo_epochs`` epochs of shuffled minibatches of the clipped surrogate + clipped value loss;
6. update beta (fixed, or the adaptive controller toward ``target_kl``).

This file is the algorithm. Beside it: ``rl_math`` (the maths: masked statistics, GAE, the
clipped losses, KL controllers), ``ppo_config``, ``ppo_models`` (the actor-critic, a value head
on the policy's own last hidden state, and the reference), ``ppo_rewards``, ``ppo_checkpoint``
(checkpoints, so that resume is exact; metrics.jsonl; the final policy) and ``ppo_report``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from condtune.baselines import rl_math as M
from condtune.baselines.ppo_checkpoint import (
    PPOState,
    claim_output_dir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from condtune.baselines.ppo_config import PPOConfig
from condtune.baselines.ppo_models import ActorCritic, build_models, lm_logits
from condtune.baselines.ppo_report import append_metrics, print_samples, truncate_metrics
from condtune.baselines.ppo_rewards import RewardFn, as_scores
from condtune.baselines.rl_math import response_mask_after_eos
from condtune.config import to_dict
from condtune.modeling import autocast
from condtune.tracking import Tracker

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- setup
def build_optimizer(actor: ActorCritic, cfg: PPOConfig) -> torch.optim.Optimizer:
    policy_params = [p for p in actor.lm.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": policy_params, "lr": cfg.learning_rate},
            {"params": actor.value_head.parameters(), "lr": cfg.value_head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )


def build_kl_controller(cfg: PPOConfig):
    if cfg.adaptive_kl:
        return M.AdaptiveKLController(cfg.kl_coef, cfg.target_kl, cfg.kl_horizon)
    return M.FixedKLController(cfg.kl_coef)


def build_state(cfg: PPOConfig) -> PPOState:
    """Fresh models, or the latest checkpoint in ``output_dir`` unless ``overwrite``."""
    torch.manual_seed(cfg.seed)
    claim_output_dir(cfg)
    ckpt = latest_checkpoint(cfg.output_dir) if not cfg.overwrite else None
    actor, ref, tok = build_models(cfg, ckpt)
    state = PPOState(
        actor=actor, ref=ref, tokenizer=tok, optimizer=build_optimizer(actor, cfg), kl_ctl=build_kl_controller(cfg)
    )
    if ckpt is not None:
        load_checkpoint(ckpt, state)
        truncate_metrics(Path(cfg.output_dir) / "metrics.jsonl", state.step)
        log.info("resumed from %s (update %d)", ckpt, state.step)
    return state


# ----------------------------------------------------------------------------- rollout
@torch.no_grad()
def generate(actor: ActorCritic, tok, prompts: list[str], *, cfg: PPOConfig):
    """Sample responses. Returns (query_responses, attention_mask, response_mask, has_eos,
    context_length, completions); tokens after the first EOS are set to the pad id."""
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    dev = next(actor.parameters()).device
    enc = {k: v.to(dev) for k, v in enc.items()}
    with autocast(cfg.bf16):
        seqs = actor.lm.generate(
            **enc,
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=0,
            max_new_tokens=cfg.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    P = enc["input_ids"].shape[1]
    responses = seqs[:, P:]
    mask, has_eos = response_mask_after_eos(responses, tok.eos_token_id)
    responses = responses.masked_fill(mask == 0, tok.pad_token_id)
    completions = [tok.decode(r[: int(m.sum())].tolist(), skip_special_tokens=True) for r, m in zip(responses, mask)]
    query_responses = torch.cat([enc["input_ids"], responses], 1)
    attention_mask = torch.cat([enc["attention_mask"], mask], 1)
    return query_responses, attention_mask, mask, has_eos, P, completions


@torch.no_grad()
def forward_logprobs(
    model: nn.Module, query_responses, attention_mask, *, context_length: int, cfg: PPOConfig, chunk: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(logprobs, values, entropy) of the response tokens, in chunks; values and entropy are
    None for a plain LM (the reference)."""
    labels = query_responses[:, context_length:]
    lps, vals, ents = [], [], []
    for s in range(0, query_responses.shape[0], chunk):
        qr, am = query_responses[s : s + chunk], attention_mask[s : s + chunk]
        with autocast(cfg.bf16):
            if isinstance(model, ActorCritic):
                logits, values = model(qr, am, context_length=context_length, temperature=cfg.temperature)
                vals.append(values)
                ents.append(M.entropy_from_logits(logits))
            else:
                logits = lm_logits(model, qr, am, context_length=context_length, temperature=cfg.temperature)
        lps.append(M.logprobs_from_logits(logits, labels[s : s + chunk]))
    cat = lambda xs: torch.cat(xs) if xs else None  # noqa: E731
    return torch.cat(lps), cat(vals), cat(ents)


def reference_logprobs(state: PPOState, qr, am, *, ctx: int, cfg: PPOConfig) -> torch.Tensor:
    """log pi_ref: the frozen copy, or with LoRA the same model with its adapters off."""
    if state.ref is not None:
        return forward_logprobs(state.ref, qr, am, context_length=ctx, cfg=cfg, chunk=cfg.mini_batch_size)[0]
    with state.actor.lm.disable_adapter():
        return forward_logprobs(state.actor.lm, qr, am, context_length=ctx, cfg=cfg, chunk=cfg.mini_batch_size)[0]


def rollout(state: PPOState, prompts: list[str], reward_fn: RewardFn, *, cfg: PPOConfig):
    """Generate, score and turn one batch into a :class:`Trajectory`; also return its metrics
    and the completions (for the sample table)."""
    qr, am, mask, has_eos, ctx, completions = generate(state.actor, state.tokenizer, prompts, cfg=cfg)
    logprobs, values, entropy = forward_logprobs(
        state.actor, qr, am, context_length=ctx, cfg=cfg, chunk=cfg.mini_batch_size
    )
    ref_logprobs = reference_logprobs(state, qr, am, ctx=ctx, cfg=cfg)
    raw = as_scores(reward_fn(list(prompts), completions), len(prompts)).to(mask.device)
    lengths = mask.sum(-1)
    scores = M.penalise_scores(
        raw, has_eos, lengths, missing_eos_penalty=cfg.missing_eos_penalty, length_penalty=cfg.length_penalty
    )
    beta = state.kl_ctl.value
    rewards, kl, non_score = M.kl_penalised_rewards(scores, logprobs, ref_logprobs, mask=mask, beta=beta)
    if cfg.whiten_rewards:
        rewards = M.masked_whiten(rewards, mask, shift_mean=False)
    adv, returns = M.estimate_advantages(
        values, rewards, mask, gamma=cfg.gamma, lam=cfg.lam, whiten=cfg.whiten_advantages
    )
    traj = M.Trajectory(
        query_responses=qr,
        attention_mask=am,
        response_mask=mask,
        logprobs=logprobs,
        ref_logprobs=ref_logprobs,
        values=values * mask,
        scores=scores,
        rewards=rewards,
        advantages=adv,
        returns=returns,
    )
    seq_kl = kl.sum(-1)
    metrics = {
        M.METRIC_SCORES: scores.mean().item(),
        M.METRIC_RAW_SCORES: raw.mean().item(),
        M.METRIC_KL: seq_kl.mean().item(),
        M.METRIC_KL_K3: (M.kl_estimate(logprobs, ref_logprobs, "k3") * mask).sum(-1).mean().item(),
        M.METRIC_NON_SCORE: non_score.sum(-1).mean().item(),
        M.METRIC_RLHF_REWARD: (scores + non_score.sum(-1)).mean().item(),
        M.METRIC_ENTROPY: (entropy * mask).sum(-1).mean().item(),
        M.METRIC_KL_COEF: beta,
        M.METRIC_RESPONSE_LEN: lengths.float().mean().item(),
        M.METRIC_EOS_FRAC: has_eos.float().mean().item(),
    }
    return traj, ctx, metrics, completions


# ----------------------------------------------------------------------------- update
def minibatch_loss(state: PPOState, mb: M.Trajectory, *, ctx: int, cfg: PPOConfig):
    with autocast(cfg.bf16):
        logits, values = state.actor(
            mb.query_responses, mb.attention_mask, context_length=ctx, temperature=cfg.temperature
        )
    logprobs = M.logprobs_from_logits(logits, mb.query_responses[:, ctx:])
    pl = M.policy_loss(logprobs, mb.logprobs, mb.advantages, mask=mb.response_mask, clip_eps=cfg.clip_eps)
    vl = M.value_loss(values, mb.values, mb.returns, mask=mb.response_mask, clip_eps=cfg.value_clip_eps)
    return pl.loss + cfg.vf_coef * vl.loss, pl, vl


def ppo_update(
    state: PPOState, traj: M.Trajectory, *, ctx: int, cfg: PPOConfig, generator: torch.Generator
) -> M.PPOStats:
    """``ppo_epochs`` shuffled passes of minibatch gradient steps over one rollout."""
    params = [p for g in state.optimizer.param_groups for p in g["params"]]
    B = traj.scores.shape[0]
    sums = np.zeros(len(M.PPOStats._fields))
    n = 0
    for _ in range(cfg.ppo_epochs):
        for idx in torch.randperm(B, generator=generator).split(cfg.mini_batch_size):
            minibatch = M.Trajectory(*(t[idx] for t in traj))
            loss, pl, vl = minibatch_loss(state, minibatch, ctx=ctx, cfg=cfg)
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            state.optimizer.step()
            stats = (loss, pl.loss, vl.loss, pl.clipfrac, pl.approx_kl, pl.ratio, vl.clipfrac)
            sums += [t.item() for t in stats] + [float(grad_norm)]
            n += 1
    return M.PPOStats(*(sums / max(n, 1)).tolist())


def step_generator(cfg: PPOConfig, step: int) -> torch.Generator:
    """Prompt order and minibatch shuffles depend only on (seed, step), so resume is exact."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)


def ppo_step(state: PPOState, prompts: Sequence[str], reward_fn: RewardFn, *, cfg: PPOConfig):
    """One rollout + update; advances ``state.step``. Returns (metrics, prompts, completions, scores)."""
    t0 = time.perf_counter()
    g = step_generator(cfg, state.step)
    batch = [prompts[i] for i in torch.randint(len(prompts), (cfg.per_device_train_batch_size,), generator=g).tolist()]
    traj, ctx, metrics, completions = rollout(state, batch, reward_fn, cfg=cfg)
    t1 = time.perf_counter()
    stats = ppo_update(state, traj, ctx=ctx, cfg=cfg, generator=g)
    t2 = time.perf_counter()
    state.kl_ctl.update(metrics[M.METRIC_KL], cfg.per_device_train_batch_size)
    state.step += 1
    state.elapsed += t2 - t0
    metrics.update(stats.metrics())
    metrics.update({M.METRIC_TIME_ROLLOUT: t1 - t0, M.METRIC_TIME_UPDATE: t2 - t1, M.METRIC_TIME_STEP: t2 - t0})
    metrics[M.METRIC_TIME_TOTAL] = state.elapsed
    return metrics, batch, completions, traj.scores.tolist()


# ----------------------------------------------------------------------------- loop
def train(state: PPOState, prompts: Sequence[str], reward_fn: RewardFn, *, cfg: PPOConfig) -> list[dict]:
    """Run updates from ``state.step`` to ``cfg.max_steps``; log, checkpoint; return the rows."""
    metrics_path = Path(cfg.output_dir) / "metrics.jsonl"
    tracker = Tracker(cfg.report_to, cfg.output_dir, config=to_dict(cfg))
    rows: list[dict] = []
    bar = tqdm(total=cfg.max_steps, initial=state.step, desc="ppo", unit="update", disable=not cfg.progress)
    while state.step < cfg.max_steps:
        metrics, batch, completions, scores = ppo_step(state, prompts, reward_fn, cfg=cfg)
        row = {"step": state.step, **metrics}
        rows.append(row)
        append_metrics(metrics_path, row)
        tracker.log(row, step=state.step)
        bar.update(1)
        bar.set_postfix(score=f"{metrics[M.METRIC_SCORES]:.3f}", kl=f"{metrics[M.METRIC_KL]:.2f}")
        if cfg.sample_every and state.step % cfg.sample_every == 0:
            print_samples(batch, completions, scores, step=state.step)
        if state.step % cfg.save_steps == 0 or state.step == cfg.max_steps:
            save_checkpoint(state, cfg)
    bar.close()
    tracker.close()
    return rows
