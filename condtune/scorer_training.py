"""Scorer training from human ratings: the typed settings and the two objectives (pointwise
regression on per-item / per-rater targets, Bradley-Terry on pairs), and the one
train-if-missing-then-load helper that the quickstart and the benchmark share. The command is
``condtune scorer train`` (recipes/scorer_train.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from condtune.data import PointwiseSpec, load_pairwise, load_pointwise, load_vader, split_items, split_ratings, to_items
from condtune.scorer import (
    OptimConfig,
    Scorer,
    evaluate_items,
    evaluate_pairs,
    fit_pairwise,
    fit_regression,
    normalise_ratings,
)

log = logging.getLogger(__name__)


@dataclass
class ScorerTrainConfig:
    ratings: str = "vader"
    """'vader' (embedded human ratings) or a ratings file (jsonl/csv/parquet/HF dir)"""
    objective: Literal["regression", "bradley_terry"] = "regression"
    """pointwise regression, or Bradley-Terry on (prompt, chosen, rejected) pairs"""
    normalize: Literal["rater", "item", "none"] = "item"
    """regression targets: per-rater z-scores, per-item means, or raw ratings"""
    columns: PointwiseSpec = field(default_factory=lambda: PointwiseSpec(score_min=-4, score_max=4))
    """pointwise column names and the declared score range"""
    prompt_col: str = "prompt"
    """pairwise: prompt column"""
    chosen_col: str = "chosen"
    """pairwise: preferred completion column"""
    rejected_col: str = "rejected"
    """pairwise: dispreferred completion column"""
    domains: list[str] = field(default_factory=list)
    """vader only: subset of tweets/movie/amazon/nyt (empty = all)"""
    rating_split: Literal["all", "half_a", "half_b"] = "all"
    """use all individual ratings, or one of two disjoint random halves of each item's ratings (gold/proxy raters)"""
    backbone: str = "minilm"
    """encoder: 'minilm' (embedded all-MiniLM-L6-v2), an HF id or a local dir"""
    max_length: int = 128
    """tokens per text"""
    max_items: int = 0
    """subsample this many training items (0 = all)"""
    val_fraction: float = 0.1
    """held-out fraction of items (or pairs)"""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """optimisation settings"""
    seed: int = 0
    """split / subsample seed"""
    out: str = "runs/scorer"
    """output directory (written atomically)"""


def load_ratings(cfg: ScorerTrainConfig) -> pd.DataFrame:
    if cfg.ratings == "vader":
        return load_vader(domains=cfg.domains or None)
    return load_pointwise(cfg.ratings, cfg.columns)


def train_pointwise(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    ratings = split_ratings(load_ratings(cfg), cfg.rating_split, cfg.seed)
    items = to_items(ratings)
    held = split_items(items["item_id"].to_numpy(), cfg.val_fraction, cfg.seed)
    train_ids = items.loc[~held, "item_id"]
    if cfg.max_items:
        train_ids = train_ids.sample(min(cfg.max_items, len(train_ids)), random_state=cfg.seed)
    targets = normalise_ratings(ratings[ratings["item_id"].isin(set(train_ids))], cfg.normalize)
    log.info(
        "training on %d items (%d ratings), holding out %d items",
        len(train_ids),
        int(targets["weight"].sum()),
        int(held.sum()),
    )
    torch.manual_seed(cfg.seed)  # the head's init: a rerun gives the same scorer
    scorer = Scorer.new(cfg.backbone, cfg.objective, cfg.normalize, cfg.max_length)
    scorer.meta.score_min, scorer.meta.score_max = cfg.columns.score_min, cfg.columns.score_max
    scorer.meta.uses_prompt = bool((ratings["prompt"].str.strip() != "").any())
    fit_regression(scorer, targets, cfg.optim)
    metrics = evaluate_items(scorer, items[held])
    return scorer, metrics


def train_bradley_terry(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    pairs = load_pairwise(cfg.ratings, cfg.prompt_col, cfg.chosen_col, cfg.rejected_col)
    held = split_items(np.arange(len(pairs)), cfg.val_fraction, cfg.seed)
    train = pairs[~held]
    if cfg.max_items:
        train = train.sample(min(cfg.max_items, len(train)), random_state=cfg.seed)
    torch.manual_seed(cfg.seed)
    scorer = Scorer.new(cfg.backbone, cfg.objective, "none", cfg.max_length)
    scorer.meta.uses_prompt = bool((pairs["prompt"].str.strip() != "").any())
    fit_pairwise(scorer, train, cfg.optim)
    return scorer, evaluate_pairs(scorer, pairs[held]) if held.any() else {}


def train_scorer(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    """Train with the configured objective; the scorer carries its held-out metrics."""
    scorer, metrics = train_pointwise(cfg) if cfg.objective == "regression" else train_bradley_terry(cfg)
    scorer.meta.metrics = metrics
    return scorer, metrics


def train_or_load(cfg: ScorerTrainConfig, trained_on: str | None = None) -> Scorer:
    """The scorer saved in ``cfg.out``; trained there first if it is not (``trained_on`` names the
    data in its card, default ``cfg.ratings``)."""
    path = Path(cfg.out)
    if not (path / "scorer.json").exists():
        log.info("training a scorer on %s (%s) -> %s", cfg.ratings, cfg.rating_split, path)
        scorer, _ = train_scorer(cfg)
        scorer.meta.trained_on = trained_on or cfg.ratings
        scorer.save(path)
    return Scorer.load(path)
