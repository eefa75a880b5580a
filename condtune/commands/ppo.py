"""condtune ppo --config ppo [key=value ...]

PPO baseline with a KL-penalised reward: R_hat = R - beta * log(pi/pi_ref) per token, R the
proxy scorer's score. Build -> train (resumes from the latest checkpoint) -> save -> report.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import torch

from condtune import config
from condtune.baselines import ppo
from condtune.baselines import rl_math as M
from condtune.baselines.ppo_checkpoint import save_final
from condtune.baselines.ppo_config import PPOConfig
from condtune.baselines.ppo_report import read_metrics, summarise
from condtune.baselines.ppo_rewards import BUILTIN_REWARDS, make_reward_fn
from condtune.checkpointing import CHECKPOINTS, RUN_RECORD
from condtune.outputs import claim_output
from condtune.prompts import prompts_or_default

log = logging.getLogger("condtune.ppo")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = config.parse(PPOConfig, argv)
    check(cfg)
    claim_output(
        cfg,
        "output_dir",
        job="ppo",
        argv=argv,
        what="a ppo run",
        marks=(RUN_RECORD, CHECKPOINTS),
        overwrite=cfg.overwrite,
    )
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)

    # build: prompts, reward (the proxy scorer, or a built-in toy reward), policy + reference
    prompts = prompts_or_default(cfg.prompts)
    reward_fn = make_reward_fn(cfg)
    state = ppo.build_state(cfg)
    log.info(
        "ppo: %d prompts, reward=%s, base=%s, %s, updates %d -> %d",
        len(prompts),
        cfg.scorer or f"builtin:{cfg.reward}",
        cfg.model,
        f"LoRA r={cfg.lora_r}" if cfg.lora_r else "full fine-tune",
        state.step,
        cfg.max_steps,
    )

    # train: rollout -> KL-penalised reward -> GAE -> clipped PPO epochs, checkpointing as it goes
    ppo.train(state, prompts, reward_fn, cfg=cfg)

    # save: a plain transformers policy dir (LoRA merged) with its value head and a card
    rows = read_metrics(out / "metrics.jsonl")
    summary = summarise(rows)
    final = save_final(state, cfg, summary)

    # report
    first, last = summary.get(f"first/{M.METRIC_SCORES}"), summary.get(f"last/{M.METRIC_SCORES}")
    print(json.dumps({"final": str(final), "updates": state.step, **summary}, indent=2))
    if first is not None:
        log.info(
            "ppo: score %.3f -> %.3f, KL %.2f nats, %.1f s/update; policy in %s",
            first,
            last,
            summary[f"last/{M.METRIC_KL}"],
            summary[f"last/{M.METRIC_TIME_STEP}"],
            final,
        )
    return 0


def check(cfg: PPOConfig) -> None:
    """Settings errors before anything loads or trains, each naming the setting."""
    rules = {
        "max_steps": (cfg.max_steps >= 1, ">= 1"),
        "per_device_train_batch_size": (cfg.per_device_train_batch_size >= 1, ">= 1"),
        "mini_batch_size": (cfg.mini_batch_size >= 1, ">= 1"),
        "ppo_epochs": (cfg.ppo_epochs >= 1, ">= 1"),
        "max_new_tokens": (cfg.max_new_tokens >= 1, ">= 1"),
        "top_p": (0 < cfg.top_p <= 1, "in (0, 1]"),
        "learning_rate": (cfg.learning_rate > 0, "> 0"),
        "value_head_lr": (cfg.value_head_lr > 0, "> 0"),
        "weight_decay": (cfg.weight_decay >= 0, ">= 0"),
        "max_grad_norm": (cfg.max_grad_norm > 0, "> 0"),
        "gamma": (0 <= cfg.gamma <= 1, "in [0, 1]"),
        "lam": (0 <= cfg.lam <= 1, "in [0, 1]"),
        "clip_eps": (cfg.clip_eps > 0, "> 0"),
        "value_clip_eps": (cfg.value_clip_eps > 0, "> 0"),
        "vf_coef": (cfg.vf_coef >= 0, ">= 0"),
        "kl_coef": (cfg.kl_coef >= 0, ">= 0"),
        "target_kl": (cfg.target_kl > 0, "> 0"),
        "kl_horizon": (cfg.kl_horizon >= 1, ">= 1"),
        "length_penalty": (True, "finite"),
        "lora_r": (cfg.lora_r >= 0, ">= 0 (0 = full fine-tune)"),
        "save_steps": (cfg.save_steps >= 1, ">= 1"),
        "save_total_limit": (cfg.save_total_limit >= 1, ">= 1"),
        "sample_every": (cfg.sample_every >= 0, ">= 0 (0 = never)"),
        "threads": (cfg.threads >= 0, ">= 0 (0 = torch default)"),
    }
    for name, (ok, rule) in rules.items():
        value = getattr(cfg, name)
        if not (ok and math.isfinite(value)):
            raise config.ConfigError(f"{name}={value!r} is out of range (use {rule})")
    if cfg.missing_eos_penalty is not None and not math.isfinite(cfg.missing_eos_penalty):
        raise config.ConfigError(f"missing_eos_penalty={cfg.missing_eos_penalty!r}: expected a finite number or null")
    if not cfg.scorer and cfg.reward not in BUILTIN_REWARDS:
        raise config.ConfigError(
            f"reward={cfg.reward!r}: not a built-in reward (choose from {sorted(BUILTIN_REWARDS)}), or set scorer=DIR"
        )


if __name__ == "__main__":
    sys.exit(main())
