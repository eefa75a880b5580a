"""A reward the tiny PPO test model can learn (see conftest.ppo_tiny_lm)."""

from __future__ import annotations

import re

import torch

CAPITALISED = re.compile(r"^ ?[A-Z]")


def title_case_reward(prompts: list[str], completions: list[str]) -> torch.Tensor:
    """Fraction of a completion's words that start with a capital letter."""
    return torch.tensor([sum(w[0].isupper() for w in c.split()) / max(len(c.split()), 1) for c in completions])
