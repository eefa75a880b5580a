"""PPO's reward wiring: a ``reward_fn(prompts, completions) -> scores``, from a saved scorer
(``scorer=DIR``) or one of the built-in toy rewards for smoke runs (``reward=lowercase``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from condtune.baselines.ppo_config import PPOConfig
from condtune.scorer import Scorer

RewardFn = Callable[[list[str], list[str]], "torch.Tensor | np.ndarray | Sequence[float]"]


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


def as_scores(raw, n: int) -> torch.Tensor:
    """A reward_fn's output as a float32 vector of ``n`` scores (an error naming the mismatch otherwise)."""
    scores = torch.as_tensor(np.asarray(raw, dtype=np.float32)).reshape(-1)
    if scores.shape[0] != n:
        raise ValueError(f"reward_fn returned {scores.shape[0]} scores for {n} completions")
    return scores
