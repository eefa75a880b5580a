"""The benchmark's fixed metric names, shared by the evaluation, the report and the docs, and
the per-set summary of one evaluated sample table (point values; the report adds intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from condtune.metrics import distinct_n

GOLD, GOLD2, PROXY, KL = "reward/gold", "reward/gold2", "reward/proxy", "kl/exact"
DISTINCT_1, DISTINCT_2 = "diversity/distinct_1", "diversity/distinct_2"
WALL, TOKENS, CALLS = "cost/wall_clock_s", "cost/generated_tokens", "cost/scorer_calls"
COND_SPEARMAN_GOLD, COND_MAE_GOLD, COND_MONOTONE = "cond/spearman_gold", "cond/mae_gold", "cond/monotone_gold"
RATER_METRIC = {"gold": GOLD, "gold2": GOLD2, "proxy": PROXY}


def text_stats(df: pd.DataFrame) -> dict:
    """Mean rewards (one per rater column present), mean KL, distinct-n and lengths of a sample table."""
    out = {metric: float(df[col].mean()) for col, metric in RATER_METRIC.items() if col in df}
    texts = df["text"].tolist()
    out.update(
        {
            KL: float(df["kl"].mean()),
            DISTINCT_1: distinct_n(texts, 1),
            DISTINCT_2: distinct_n(texts, 2),
            "eval/n_samples": int(len(df)),
            "eval/mean_tokens": float(np.mean(df["n_tokens"])) if len(df) else 0.0,
        }
    )
    return out
