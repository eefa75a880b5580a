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

The value head is a ``Linear(hidden, 1)`` on the policy's own last hidden state, so no second
model runs forward or backward. The reference is a frozen copy of the initial policy, or with
LoRA the same base with the adapters disabled. Checkpoints (policy, value head, optimizer,
KL controller, RNG, step) are written atomically every ``save_every`` updates, and a run
resumes from the latest one. All maths lives in :mod:`condtune.baselines.rl_math`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from condtune.baselines import rl_math as M
from condtune.io import atomic_dir, read_jsonl, write_json, write_jsonl
from condtune.modeling import autocast, device

log = logging.getLogger(__name__)

RewardFn = Callable[[list[str], list[str]], "torch.Tensor | np.ndarray | Sequence[float]"]

DEFAULT_PROMPTS = [
    "Movie review:",
    "Product review:",
    "My review of this film:",
    "Customer review:",
    "What I thought of the movie:",
    "Review of the restaurant:",
    "Book review:",
    "My opinion of this product:",
    "Tweet:",
    "The critics said:",
    "Hotel review:",
    "Album review:",
    "Here is my honest review:",
    "Review of the new phone:",
    "Thoughts on the show:",
    "Game review:",
]


@dataclass
class PPOConfig:
    model: str = "smollm2-135m"
    """base policy (embedded-default name, HF id or local dir); also the frozen reference"""
    scorer: str = ""
    """scorer directory whose score is the reward; empty means use the built-in `reward`"""
    reward: str = "lowercase"
    """built-in reward when no scorer is given (smoke runs): lowercase | brevity"""
    prompts: str = ""
    """prompt file (.txt one per line, or .jsonl/.json with a `prompt` or `text` field); empty = built-in review prefixes"""
    output_dir: str = "runs/ppo"
    """where checkpoints, metrics.jsonl and the final policy go"""
    seed: int = 0
    """seed for prompt order, sampling and minibatch shuffling"""
    total_updates: int = 100
    """PPO updates (one rollout each)"""
    batch_size: int = 16
    """sequences per rollout"""
    mini_batch_size: int = 8
    """sequences per gradient step"""
    ppo_epochs: int = 4
    """passes over each rollout"""
    max_new_tokens: int = 24
    """response length limit"""
    temperature: float = 1.0
    """sampling temperature (log-probs are computed at the same temperature)"""
    top_p: float = 1.0
    """nucleus sampling mass (1.0 keeps the sampler and the log-probs consistent)"""
    lr: float = 3e-6
    """learning rate of the policy (LoRA adapters or all weights); tune it with kl_coef"""
    value_head_lr: float = 1e-4
    """learning rate of the freshly initialised value head"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    max_grad_norm: float = 1.0
    """gradient-norm clip"""
    gamma: float = 1.0
    """discount"""
    lam: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """policy ratio clip"""
    value_clip_eps: float = 0.2
    """value clip around the rollout-time values"""
    vf_coef: float = 0.1
    """value loss weight"""
    kl_coef: float = 0.05
    """beta in R_hat = R - beta * log(pi/pi_ref) (initial value when adaptive)"""
    adaptive_kl: bool = False
    """adapt beta toward `target_kl` (Ziegler et al. 2019) instead of keeping it fixed"""
    target_kl: float = 6.0
    """target sequence-level KL (nats) for the adaptive controller"""
    kl_horizon: int = 10000
    """adaptive controller horizon, in sequences"""
    whiten_rewards: bool = False
    """whiten the per-token rewards of each rollout (scale only, the mean is kept)"""
    whiten_advantages: bool = True
    """whiten advantages of each rollout"""
    missing_eos_penalty: float | None = None
    """subtracted from the score of a response that hits max_new_tokens without EOS"""
    length_penalty: float = 0.0
    """subtracted from the score per response token"""
    lora_r: int = 0
    """LoRA rank; 0 = full fine-tune"""
    lora_alpha: int = 16
    """LoRA alpha"""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """modules that get LoRA adapters"""
    bf16: bool | None = None
    """bf16 autocast (default: on when the CPU/GPU supports it)"""
    threads: int = 0
    """torch CPU threads (0 = torch default)"""
    save_every: int = 10
    """checkpoint every this many updates (and at the end)"""
    keep_checkpoints: int = 1
    """checkpoints kept on disk (the newest ones)"""
    resume: bool = True
    """continue from the latest checkpoint in output_dir if there is one"""
    sample_every: int = 10
    """print a table of sample completions every this many updates (0 = never)"""
    progress: bool = True
    """tqdm progress bar with an ETA"""

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for PPO sampling, got {self.temperature}")
        if self.batch_size % self.mini_batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of mini_batch_size ({self.mini_batch_size})"
            )


# ----------------------------------------------------------------------------- rewards
def lowercase_reward(prompts: list[str], completions: list[str]) -> torch.Tensor:
    """Fraction of a completion's characters that are a-z (a trivially learnable reward)."""
    return torch.tensor([sum("a" <= ch <= "z" for ch in c) / max(len(c), 1) for c in completions])


def brevity_reward(prompts: list[str], completions: list[str]) -> torch.Tensor:
    """Minus the number of words, so that ending early (EOS) pays."""
    return -torch.tensor([float(len(c.split())) for c in completions])


BUILTIN_REWARDS: dict[str, RewardFn] = {"lowercase": lowercase_reward, "brevity": brevity_reward}


def scorer_reward(path: str | Path) -> RewardFn:
    """Reward = a saved condtune scorer's score (on the raters' scale). Whether the prompt is
    read is the scorer's own setting (``uses_prompt``, fixed by what it was trained on)."""
    from condtune.scorer import Scorer  # lazy: PPO itself does not depend on the scorer

    scorer = Scorer.load(path)

    def reward_fn(prompts: list[str], completions: list[str]) -> np.ndarray:
        return scorer.score_pairs(prompts, completions)

    return reward_fn


def make_reward_fn(cfg: PPOConfig) -> RewardFn:
    if cfg.scorer:
        return scorer_reward(cfg.scorer)
    if cfg.reward not in BUILTIN_REWARDS:
        raise ValueError(f"reward {cfg.reward!r} is not built in ({sorted(BUILTIN_REWARDS)}); or set scorer=DIR")
    return BUILTIN_REWARDS[cfg.reward]


# ----------------------------------------------------------------------------- models
class ActorCritic(nn.Module):
    """The policy LM plus a scalar value head on its last hidden state."""

    def __init__(self, lm: nn.Module, value_head: nn.Linear | None = None):
        super().__init__()
        self.lm = lm
        hidden = lm.config.hidden_size
        if value_head is None:
            value_head = nn.Linear(hidden, 1)  # zero init: V = 0, so early advantages are the
            nn.init.zeros_(value_head.weight)  # rewards themselves rather than value-head noise
            nn.init.zeros_(value_head.bias)
        self.value_head = value_head

    def forward(self, query_responses, attention_mask, context_length: int, temperature: float = 1.0):
        """(logits / temperature, values) at the positions that predict each response token."""
        out = self.lm(
            input_ids=query_responses,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            output_hidden_states=True,
            logits_to_keep=query_responses.shape[1] - context_length + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1].float() / temperature
        hidden = out.hidden_states[-1][:, context_length - 1 : -1]
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        return logits, values


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generate() uses them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def uses_lora(cfg: PPOConfig) -> bool:
    return cfg.lora_r > 0


def build_models(cfg: PPOConfig, checkpoint: Path | None = None):
    """(actor_critic, reference or None, tokenizer). With LoRA the reference is the base with
    the adapters disabled (None here); otherwise a frozen copy of the base."""
    from condtune.modeling import load_causal_lm

    base, tok = load_causal_lm(cfg.model)
    base.generation_config.pad_token_id = tok.pad_token_id
    if uses_lora(cfg):
        from peft import LoraConfig, PeftModel, get_peft_model

        if checkpoint is not None:
            lm = PeftModel.from_pretrained(base, checkpoint / "policy", is_trainable=True)
        else:
            lora = LoraConfig(
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=0.0,
                target_modules=list(cfg.lora_target_modules),
                task_type="CAUSAL_LM",
            )
            lm = get_peft_model(base, lora)
        ref = None
    else:
        ref = base.requires_grad_(False).eval()
        if checkpoint is not None:
            from transformers import AutoModelForCausalLM

            lm = AutoModelForCausalLM.from_pretrained(checkpoint / "policy", dtype=torch.float32)
        else:
            lm = copy.deepcopy(base)
        lm.requires_grad_(True)
    actor = ActorCritic(lm).to(device())
    actor.eval()  # no dropout: rollout and update log-probs must agree
    return actor, (ref.to(device()) if ref is not None else None), tok


def build_optimizer(actor: ActorCritic, cfg: PPOConfig) -> torch.optim.Optimizer:
    policy_params = [p for p in actor.lm.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [{"params": policy_params, "lr": cfg.lr}, {"params": actor.value_head.parameters(), "lr": cfg.value_head_lr}],
        weight_decay=cfg.weight_decay,
    )


def build_kl_controller(cfg: PPOConfig):
    if cfg.adaptive_kl:
        return M.AdaptiveKLController(cfg.kl_coef, cfg.target_kl, cfg.kl_horizon)
    return M.FixedKLController(cfg.kl_coef)


@dataclass
class PPOState:
    """Everything an update mutates; what a checkpoint holds."""

    actor: ActorCritic
    ref: nn.Module | None
    tokenizer: object
    optimizer: torch.optim.Optimizer
    kl_ctl: M.FixedKLController | M.AdaptiveKLController
    step: int = 0
    elapsed: float = 0.0


def build_state(cfg: PPOConfig) -> PPOState:
    """Fresh models, or the latest checkpoint in ``output_dir`` when ``resume`` is on."""
    torch.manual_seed(cfg.seed)
    ckpt = latest_checkpoint(cfg.output_dir) if cfg.resume else None
    actor, ref, tok = build_models(cfg, ckpt)
    state = PPOState(actor, ref, tok, build_optimizer(actor, cfg), build_kl_controller(cfg))
    if ckpt is not None:
        load_checkpoint(ckpt, state)
        truncate_metrics(Path(cfg.output_dir) / "metrics.jsonl", state.step)
        log.info("resumed from %s (update %d)", ckpt, state.step)
    return state


# ----------------------------------------------------------------------------- rollout
def response_mask_after_eos(responses: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, has_eos): mask is 1 up to and including the first EOS (all 1 without one)."""
    is_eos = responses == eos_id
    has_eos = is_eos.any(-1)
    T = responses.shape[1]
    first = torch.where(has_eos, is_eos.int().argmax(-1), torch.full_like(has_eos, T, dtype=torch.long))
    mask = torch.arange(T, device=responses.device)[None, :] <= first[:, None]
    return mask.long(), has_eos


@torch.no_grad()
def generate(actor: ActorCritic, tok, prompts: list[str], cfg: PPOConfig):
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
    model: nn.Module, query_responses, attention_mask, context_length: int, cfg: PPOConfig, chunk: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(logprobs, values, entropy) of the response tokens, in chunks; values and entropy are
    None for a plain LM (the reference)."""
    labels = query_responses[:, context_length:]
    lps, vals, ents = [], [], []
    for s in range(0, query_responses.shape[0], chunk):
        qr, am = query_responses[s : s + chunk], attention_mask[s : s + chunk]
        with autocast(cfg.bf16):
            if isinstance(model, ActorCritic):
                logits, values = model(qr, am, context_length, cfg.temperature)
                vals.append(values)
                ents.append(M.entropy_from_logits(logits))
            else:
                out = model(
                    input_ids=qr,
                    attention_mask=am,
                    position_ids=position_ids_from_mask(am),
                    logits_to_keep=qr.shape[1] - context_length + 1,
                    use_cache=False,
                )
                logits = out.logits[:, :-1].float() / cfg.temperature
        lps.append(M.logprobs_from_logits(logits, labels[s : s + chunk]))
    cat = lambda xs: torch.cat(xs) if xs else None  # noqa: E731
    return torch.cat(lps), cat(vals), cat(ents)


def reference_logprobs(state: PPOState, query_responses, attention_mask, context_length, cfg) -> torch.Tensor:
    if state.ref is not None:
        return forward_logprobs(state.ref, query_responses, attention_mask, context_length, cfg, cfg.mini_batch_size)[0]
    with state.actor.lm.disable_adapter():
        return forward_logprobs(
            state.actor.lm, query_responses, attention_mask, context_length, cfg, cfg.mini_batch_size
        )[0]


def as_scores(raw, n: int) -> torch.Tensor:
    scores = torch.as_tensor(np.asarray(raw, dtype=np.float32)).reshape(-1)
    if scores.shape[0] != n:
        raise ValueError(f"reward_fn returned {scores.shape[0]} scores for {n} completions")
    return scores


def rollout(state: PPOState, prompts: list[str], reward_fn: RewardFn, cfg: PPOConfig):
    """Generate, score and turn one batch into a :class:`Trajectory`; also return its metrics
    and the completions (for the sample table)."""
    qr, am, mask, has_eos, ctx, completions = generate(state.actor, state.tokenizer, prompts, cfg)
    logprobs, values, entropy = forward_logprobs(state.actor, qr, am, ctx, cfg, cfg.mini_batch_size)
    ref_logprobs = reference_logprobs(state, qr, am, ctx, cfg)
    raw = as_scores(reward_fn(list(prompts), completions), len(prompts)).to(mask.device)
    lengths = mask.sum(-1)
    scores = M.penalise_scores(raw, has_eos, lengths, cfg.missing_eos_penalty, cfg.length_penalty)
    beta = state.kl_ctl.value
    rewards, kl, non_score = M.kl_penalised_rewards(scores, logprobs, ref_logprobs, mask, beta)
    if cfg.whiten_rewards:
        rewards = M.masked_whiten(rewards, mask, shift_mean=False)
    adv, returns = M.estimate_advantages(values, rewards, mask, cfg.gamma, cfg.lam, whiten=cfg.whiten_advantages)
    traj = M.Trajectory(qr, am, mask, logprobs, ref_logprobs, values * mask, scores, rewards, adv, returns)
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
def select(traj: M.Trajectory, idx: torch.Tensor) -> M.Trajectory:
    return M.Trajectory(*(t[idx] for t in traj))


def minibatch_loss(state: PPOState, mb: M.Trajectory, ctx: int, cfg: PPOConfig):
    with autocast(cfg.bf16):
        logits, values = state.actor(mb.query_responses, mb.attention_mask, ctx, cfg.temperature)
    logprobs = M.logprobs_from_logits(logits, mb.query_responses[:, ctx:])
    pl = M.policy_loss(logprobs, mb.logprobs, mb.advantages, mb.response_mask, cfg.clip_eps)
    vl = M.value_loss(values, mb.values, mb.returns, mb.response_mask, cfg.value_clip_eps)
    return pl.loss + cfg.vf_coef * vl.loss, pl, vl


def ppo_update(state: PPOState, traj: M.Trajectory, ctx: int, cfg: PPOConfig, generator: torch.Generator) -> M.PPOStats:
    """``ppo_epochs`` shuffled passes of minibatch gradient steps over one rollout."""
    params = [p for g in state.optimizer.param_groups for p in g["params"]]
    B = traj.scores.shape[0]
    sums = np.zeros(len(M.PPOStats._fields))
    n = 0
    for _ in range(cfg.ppo_epochs):
        for idx in torch.randperm(B, generator=generator).split(cfg.mini_batch_size):
            loss, pl, vl = minibatch_loss(state, select(traj, idx), ctx, cfg)
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            state.optimizer.step()
            sums += [
                loss.item(),
                pl.loss.item(),
                vl.loss.item(),
                pl.clipfrac.item(),
                pl.approx_kl.item(),
                pl.ratio.item(),
                vl.clipfrac.item(),
                float(grad_norm),
            ]
            n += 1
    return M.PPOStats(*(sums / max(n, 1)).tolist())


def stats_metrics(stats: M.PPOStats) -> dict:
    return {
        M.METRIC_LOSS: stats.loss,
        M.METRIC_POLICY_LOSS: stats.policy_loss,
        M.METRIC_VALUE_LOSS: stats.value_loss,
        M.METRIC_CLIPFRAC: stats.clipfrac,
        M.METRIC_APPROX_KL: stats.approx_kl,
        M.METRIC_RATIO: stats.ratio,
        M.METRIC_VALUE_CLIPFRAC: stats.value_clipfrac,
        M.METRIC_GRAD_NORM: stats.grad_norm,
    }


def step_generator(cfg: PPOConfig, step: int) -> torch.Generator:
    """Prompt order and minibatch shuffles depend only on (seed, step), so resume is exact."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)


def ppo_step(state: PPOState, prompts: Sequence[str], reward_fn: RewardFn, cfg: PPOConfig):
    """One rollout + update; advances ``state.step``. Returns (metrics, prompts, completions, scores)."""
    t0 = time.perf_counter()
    g = step_generator(cfg, state.step)
    batch = [prompts[i] for i in torch.randint(len(prompts), (cfg.batch_size,), generator=g).tolist()]
    traj, ctx, metrics, completions = rollout(state, batch, reward_fn, cfg)
    t1 = time.perf_counter()
    stats = ppo_update(state, traj, ctx, cfg, g)
    t2 = time.perf_counter()
    state.kl_ctl.update(metrics[M.METRIC_KL], cfg.batch_size)
    state.step += 1
    state.elapsed += t2 - t0
    metrics.update(stats_metrics(stats))
    metrics.update(
        {
            M.METRIC_TIME_ROLLOUT: t1 - t0,
            M.METRIC_TIME_UPDATE: t2 - t1,
            M.METRIC_TIME_STEP: t2 - t0,
            M.METRIC_TIME_TOTAL: state.elapsed,
        }
    )
    return metrics, batch, completions, traj.scores.tolist()


# ----------------------------------------------------------------------------- checkpoints
CKPT_RE = re.compile(r"^step_(\d+)$")


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in root.iterdir() if (m := CKPT_RE.match(p.name)) and (p / "state.json").exists()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(output_dir)
    return dirs[-1] if dirs else None


def save_checkpoint(state: PPOState, cfg: PPOConfig) -> Path:
    """Atomically write ``output_dir/checkpoints/step_NNNNNN`` and prune older ones."""
    from condtune.config import to_dict

    target = Path(cfg.output_dir) / "checkpoints" / f"step_{state.step:06d}"
    with atomic_dir(target) as tmp:
        state.actor.lm.save_pretrained(tmp / "policy")  # adapters only with LoRA
        state.tokenizer.save_pretrained(tmp / "policy")
        torch.save(state.actor.value_head.state_dict(), tmp / "value_head.pt")
        torch.save(state.optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        write_json(
            tmp / "state.json",
            {
                "step": state.step,
                "elapsed": state.elapsed,
                "kl_controller": state.kl_ctl.state_dict(),
                "base_model": cfg.model,
                "lora": uses_lora(cfg),
                "config": to_dict(cfg),
            },
        )
    for old in checkpoint_dirs(cfg.output_dir)[: -max(cfg.keep_checkpoints, 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(path: Path, state: PPOState) -> None:
    """Restore value head, optimizer, KL controller, RNG and step (the policy weights were
    loaded by :func:`build_models`)."""
    meta = json.loads((path / "state.json").read_text())
    dev = next(state.actor.parameters()).device
    state.actor.value_head.load_state_dict(torch.load(path / "value_head.pt", map_location=dev, weights_only=True))
    state.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=dev, weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state.kl_ctl.load_state_dict(meta["kl_controller"])
    state.step = int(meta["step"])
    state.elapsed = float(meta.get("elapsed", 0.0))


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint a run resumes from."""
    if path.exists():
        write_jsonl(path, [r for r in read_metrics(path) if r.get("step", 0) <= step])


def read_metrics(path: str | Path) -> list[dict]:
    """The logged metric rows; ``[]`` before the first update is logged."""
    return read_jsonl(path, missing_ok=True)


def append_metrics(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


# ----------------------------------------------------------------------------- loop and outputs
def print_samples(
    prompts: Sequence[str], completions: Sequence[str], scores: Sequence[float], step: int, k: int = 4
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"PPO samples, update {step}", show_lines=True)
    for col in ("prompt", "score", "completion"):
        table.add_column(col, overflow="fold")
    for p, c, s in list(zip(prompts, completions, scores))[:k]:
        table.add_row(p, f"{s:+.2f}", c)
    Console(stderr=True).print(table)


def train(state: PPOState, prompts: Sequence[str], reward_fn: RewardFn, cfg: PPOConfig) -> list[dict]:
    """Run updates from ``state.step`` to ``cfg.total_updates``; log, checkpoint; return the rows."""
    from tqdm.auto import tqdm

    metrics_path = Path(cfg.output_dir) / "metrics.jsonl"
    rows: list[dict] = []
    bar = tqdm(total=cfg.total_updates, initial=state.step, desc="ppo", unit="update", disable=not cfg.progress)
    while state.step < cfg.total_updates:
        metrics, batch, completions, scores = ppo_step(state, prompts, reward_fn, cfg)
        row = {"step": state.step, **metrics}
        rows.append(row)
        append_metrics(metrics_path, row)
        bar.update(1)
        bar.set_postfix(score=f"{metrics[M.METRIC_SCORES]:.3f}", kl=f"{metrics[M.METRIC_KL]:.2f}")
        if cfg.sample_every and state.step % cfg.sample_every == 0:
            print_samples(batch, completions, scores, state.step)
        if state.step % cfg.save_every == 0 or state.step == cfg.total_updates:
            save_checkpoint(state, cfg)
    bar.close()
    return rows


def save_final(state: PPOState, cfg: PPOConfig, summary: dict) -> Path:
    """``output_dir/final``: a plain transformers policy (LoRA merged), value head and a card."""
    from condtune.config import to_dict

    target = Path(cfg.output_dir) / "final"
    lm = state.actor.lm
    if uses_lora(cfg):
        lm = copy.deepcopy(lm).merge_and_unload()
    with atomic_dir(target) as tmp:
        lm.save_pretrained(tmp)
        state.tokenizer.save_pretrained(tmp)
        torch.save(state.actor.value_head.state_dict(), tmp / "value_head.pt")
        write_json(
            tmp / "ppo_card.json",
            {
                "method": "ppo",
                "base_model": cfg.model,
                "scorer": cfg.scorer or f"builtin:{cfg.reward}",
                "updates": state.step,
                "seconds": state.elapsed,
                "summary": summary,
                "config": to_dict(cfg),
            },
        )
    return target


def summarise(rows: list[dict], last: int = 5) -> dict:
    """Mean of each metric over the first and the last ``last`` updates."""
    if not rows:
        return {}
    keys = [M.METRIC_SCORES, M.METRIC_KL, M.METRIC_RLHF_REWARD, M.METRIC_KL_COEF, M.METRIC_TIME_STEP]
    head, tail = rows[:last], rows[-last:]
    return {
        **{f"first/{k}": float(np.mean([r[k] for r in head])) for k in keys},
        **{f"last/{k}": float(np.mean([r[k] for r in tail])) for k in keys},
    }
