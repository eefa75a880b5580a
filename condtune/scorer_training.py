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

from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.ratings import (
    PointwiseSpec,
    check_scores_vary,
    load_pairwise,
    load_pointwise,
    split_items,
    split_ratings,
    text_of,
    to_items,
)
from condtune.scorer import (
    OptimConfig,
    Scorer,
    evaluate_items,
    evaluate_pairs,
    fit_pairwise,
    fit_regression,
)
from condtune.vader import load_vader

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
    max_train_samples: int = 0
    """subsample this many training items (0 = all)"""
    val_fraction: float = 0.1
    """held-out fraction of items (or pairs), 0 <= val_fraction < 1 (0: train on all, no held-out metrics)"""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """optimisation settings"""
    seed: int = 0
    """the run's seed: the held-out split, the subsample, the head's init and the batch order"""
    output_dir: str = "runs/scorer"
    """output directory (written atomically)"""
    overwrite: bool = False
    """replace an out folder that holds files a scorer does not write (they are deleted)"""

    def __post_init__(self):
        if not 0 <= self.val_fraction < 1:
            raise ValueError(
                f"val_fraction={self.val_fraction!r} is out of range: use 0 <= val_fraction < 1 "
                "(0 trains on every item and reports no held-out metrics)"
            )
        if self.max_length < 2:
            raise ValueError(f"max_length={self.max_length!r} is out of range (at least 2 tokens per text)")
        if self.max_train_samples < 0:
            raise ValueError(
                f"max_train_samples={self.max_train_samples!r} is out of range (0 = all, or a positive count)"
            )


def normalise_ratings(ratings: pd.DataFrame, mode: Literal["rater", "item", "none"]) -> pd.DataFrame:
    """Per-item training targets from individual ratings: ``item_id, text, target, weight``.

    ``target`` is on the raters' scale (rater-normalised ratings are mapped back with the
    global mean/sd), ``weight`` is the number of ratings behind it (1 for ``none``).
    """
    df = ratings.copy()
    df["text"] = [text_of(p, c) for p, c in zip(df["prompt"], df["completion"])]
    if mode == "none":
        return pd.DataFrame({"item_id": df["item_id"], "text": df["text"], "target": df["score"], "weight": 1.0})
    if mode == "rater":
        if df["rater"].isna().any():
            raise ValueError("normalize='rater' needs a rater id on every rating (set rater_col), or use 'item'")
        g = df.groupby("rater")["score"]
        mu, sd = g.transform("mean"), g.transform("std").fillna(0.0)
        gsd = df["score"].std()
        z = (df["score"] - mu) / sd.where(sd > 1e-6, gsd)
        df["score"] = z * gsd + df["score"].mean()
    elif mode != "item":
        raise ValueError(f"unknown normalisation {mode!r} (rater, item or none)")
    g = df.groupby("item_id", sort=False)
    out = g.agg(text=("text", "first"), target=("score", "mean"), weight=("score", "size")).reset_index()
    return out


def load_ratings(cfg: ScorerTrainConfig) -> pd.DataFrame:
    if cfg.ratings == "vader":
        return load_vader(domains=cfg.domains or None)
    return load_pointwise(cfg.ratings, cfg.columns)


def check_raters(ratings: pd.DataFrame, cfg: ScorerTrainConfig) -> None:
    """``normalize=rater`` needs a rater id on every rating: say which setting or row lacks one."""
    if cfg.normalize != "rater" or not ratings["rater"].isna().any():
        return
    if cfg.ratings == "vader":
        raise ConfigError("normalize=rater: the VADER ratings carry no rater ids; use normalize=item")
    if not cfg.columns.rater_col:
        raise ConfigError(
            f"normalize=rater needs the rater id of every rating in {cfg.ratings}: set columns.rater_col=<column>, "
            "or use normalize=item"
        )
    row = int(np.flatnonzero(ratings["rater"].isna().to_numpy())[0]) + 1
    raise DataError(
        cfg.ratings,
        "missing rater id (normalize=rater needs one on every rating)",
        row=row,
        column=cfg.columns.rater_col,
    )


def check_split(n: int, held: np.ndarray, cfg: ScorerTrainConfig, *, unit: str = "items") -> None:
    """Before any training: something to train on, and (val_fraction > 0) something to evaluate on,
    so a run never trains and then fails on its evaluation."""
    n_held = int(held.sum())
    n_train = min(n - n_held, cfg.max_train_samples or n)
    if n_train < 2:
        limits = f"val_fraction={cfg.val_fraction}" + (
            f" and max_train_samples={cfg.max_train_samples}" if cfg.max_train_samples else ""
        )
        raise ConfigError(
            f"{cfg.ratings} has {n} {unit}, and {limits} leave {n_train} to train on; a scorer needs at least 2 "
            "(more data, or a smaller val_fraction)"
        )
    if cfg.val_fraction > 0 and n_held < 2:
        raise ConfigError(
            f"{cfg.ratings} has {n} {unit}, and val_fraction={cfg.val_fraction} holds out {n_held}; held-out metrics "
            "need at least 2 (a larger val_fraction, or val_fraction=0 to train on all without held-out metrics)"
        )


def check_targets_vary(items: pd.DataFrame, held: np.ndarray, targets: pd.DataFrame, cfg: ScorerTrainConfig) -> None:
    """Before any training: the training targets, and (val_fraction > 0) the held-out items' mean
    scores, must not all be equal; a constant target teaches nothing, and a constant truth makes the
    held-out correlations in the scorer card NaN."""
    limits = f"val_fraction={cfg.val_fraction}, seed={cfg.seed}" + (
        f", max_train_samples={cfg.max_train_samples}" if cfg.max_train_samples else ""
    )
    if len(targets) >= 2 and targets["target"].nunique() == 1:
        raise ConfigError(
            f"{cfg.ratings}: the {len(targets)} training items all have the target {targets['target'].iloc[0]:g} "
            f"({limits}); a constant target teaches a scorer nothing: more items, or another split"
        )
    truth = items.loc[held, "mean"]
    if len(truth) >= 2 and truth.nunique() == 1:
        raise ConfigError(
            f"{cfg.ratings}: the {len(truth)} held-out items all have the mean score {truth.iloc[0]:g} ({limits}), so "
            "their correlations would be NaN: a larger val_fraction or another seed (or val_fraction=0: no held-out "
            "metrics)"
        )


def train_pointwise(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    ratings = load_ratings(cfg)
    check_scores_vary(ratings["score"], cfg.ratings, "score" if cfg.ratings == "vader" else cfg.columns.score_col)
    check_raters(ratings, cfg)
    ratings = split_ratings(ratings, cfg.rating_split, cfg.seed)
    items = to_items(ratings)
    held = split_items(items["item_id"].to_numpy(), cfg.val_fraction, cfg.seed)
    check_split(len(items), held, cfg)
    train_ids = items.loc[~held, "item_id"]
    if cfg.max_train_samples:
        train_ids = train_ids.sample(min(cfg.max_train_samples, len(train_ids)), random_state=cfg.seed)
    targets = normalise_ratings(ratings[ratings["item_id"].isin(set(train_ids))], cfg.normalize)
    check_targets_vary(items, held, targets, cfg)
    log.info(
        "training on %d items (%d ratings), holding out %d items",
        len(train_ids),
        int(targets["weight"].sum()),
        int(held.sum()),
    )
    torch.manual_seed(cfg.seed)  # the head's init: a rerun gives the same scorer
    scorer = Scorer.new(cfg.backbone, cfg.objective, cfg.normalize, max_length=cfg.max_length)
    scorer.meta.score_min, scorer.meta.score_max = cfg.columns.score_min, cfg.columns.score_max
    scorer.meta.uses_prompt = bool((ratings["prompt"].str.strip() != "").any())
    fit_regression(scorer, targets, cfg.optim, seed=cfg.seed)
    if not held.any():
        log.info("val_fraction=0: no held-out items, so no held-out metrics")
        return scorer, {}
    return scorer, evaluate_items(scorer, items[held])


def train_bradley_terry(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    pairs = load_pairwise(
        cfg.ratings, prompt_col=cfg.prompt_col, chosen_col=cfg.chosen_col, rejected_col=cfg.rejected_col
    )
    held = split_items(np.arange(len(pairs)), cfg.val_fraction, cfg.seed)
    check_split(len(pairs), held, cfg, unit="pairs")
    train = pairs[~held]
    if cfg.max_train_samples:
        train = train.sample(min(cfg.max_train_samples, len(train)), random_state=cfg.seed)
    torch.manual_seed(cfg.seed)
    scorer = Scorer.new(cfg.backbone, cfg.objective, "none", max_length=cfg.max_length)
    scorer.meta.uses_prompt = bool((pairs["prompt"].str.strip() != "").any())
    fit_pairwise(scorer, train, cfg.optim, seed=cfg.seed)
    return scorer, evaluate_pairs(scorer, pairs[held]) if held.any() else {}


def train_scorer(cfg: ScorerTrainConfig) -> tuple[Scorer, dict]:
    """Train with the configured objective; the scorer carries its held-out metrics."""
    scorer, metrics = train_pointwise(cfg) if cfg.objective == "regression" else train_bradley_terry(cfg)
    scorer.meta.metrics = metrics
    return scorer, metrics


def train_or_load(cfg: ScorerTrainConfig, trained_on: str | None = None) -> Scorer:
    """The scorer saved in ``cfg.output_dir``; trained there first if it is not (``trained_on`` names the
    data in its card, default ``cfg.ratings``)."""
    path = Path(cfg.output_dir)
    if not (path / "scorer.json").exists():
        log.info("training a scorer on %s (%s) -> %s", cfg.ratings, cfg.rating_split, path)
        scorer, _ = train_scorer(cfg)
        scorer.meta.trained_on = trained_on or cfg.ratings
        scorer.save(path)
    return Scorer.load(path)
