"""condtune ppo --config configs/ppo.yaml [key=value ...]

PPO baseline with a KL-penalised reward: R_hat = R - beta * log(pi/pi_ref) per token, R the
proxy scorer's score. Build -> train (resumes from the latest checkpoint) -> save -> report.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from condtune import config
from condtune.baselines import ppo
from condtune.baselines import rl_math as M
from condtune.baselines.ppo_checkpoint import save_final
from condtune.baselines.ppo_config import DEFAULT_PROMPTS, PPOConfig
from condtune.baselines.ppo_report import read_metrics, summarise
from condtune.baselines.ppo_rewards import make_reward_fn
from condtune.data import load_prompts

log = logging.getLogger("condtune.ppo")


def main(argv: list[str] | None = None) -> int:
    cfg = config.parse(PPOConfig, sys.argv[1:] if argv is None else argv)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)

    # build: prompts, reward (the proxy scorer, or a built-in toy reward), policy + reference
    prompts = load_prompts(cfg.prompts) if cfg.prompts else list(DEFAULT_PROMPTS)
    reward_fn = make_reward_fn(cfg)
    state = ppo.build_state(cfg)
    log.info(
        "ppo: %d prompts, reward=%s, base=%s, %s, updates %d -> %d",
        len(prompts),
        cfg.scorer or f"builtin:{cfg.reward}",
        cfg.model,
        f"LoRA r={cfg.lora_r}" if cfg.lora_r else "full fine-tune",
        state.step,
        cfg.total_updates,
    )

    # train: rollout -> KL-penalised reward -> GAE -> clipped PPO epochs, checkpointing as it goes
    ppo.train(state, prompts, reward_fn, cfg)

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


if __name__ == "__main__":
    sys.exit(main())
