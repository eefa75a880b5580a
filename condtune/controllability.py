"""Controllability of a conditioned policy: requested vs achieved score.

:func:`sample_at_targets` generates ``n`` completions per (prompt, target) and scores them;
:func:`summarise` gives per-target achieved mean ± sd, Spearman(requested, achieved) over
samples, and MAE; :func:`markdown_table` renders prompt | requested | achieved | text.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from condtune.metrics import mae, spearman
from condtune.sampling import SamplingConfig


def sample_at_targets(
    policy,
    scorer,
    prompts: Sequence[str],
    *,
    targets: Sequence[float],
    n: int,
    sampling: SamplingConfig,
    seed: int = 0,
    tags: dict | None = None,
) -> pd.DataFrame:
    """One row per sample: prompt, requested, bin, text, n_tokens, achieved (scorer score)."""
    rows = []
    for t_i, target in enumerate(targets):
        s = policy.generate(
            prompts, score=target, num_return_sequences=n, tags=tags, sampling=sampling, seed=seed + t_i, progress=True
        )
        b = policy.bin_for(target)
        for p, texts, counts in zip(prompts, s.texts, s.n_tokens):
            rows += [
                {"prompt": p, "requested": float(target), "bin": b + 1, "text": t, "n_tokens": c}
                for t, c in zip(texts, counts)
            ]
    df = pd.DataFrame(rows)
    df["achieved"] = scorer.score_pairs(df["prompt"].tolist(), df["text"].tolist())
    return df


def summarise(samples: pd.DataFrame, achieved_col: str = "achieved") -> dict:
    """Per-target achieved mean/sd/count, Spearman over samples, MAE, and monotonicity."""
    g = samples.groupby("requested")[achieved_col]
    per = [
        {
            "requested": float(r),
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v)),
        }
        for r, v in g
    ]
    means = [p["mean"] for p in per]
    return {
        "per_target": per,
        "spearman": spearman(samples["requested"], samples[achieved_col]),
        "mae": mae(samples["requested"], samples[achieved_col]),
        "monotone": bool(np.all(np.diff(means) > 0)),
    }


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(samples: pd.DataFrame, per_cell: int = 1, width: int = 90) -> str:
    """prompt | requested | achieved | text, ``per_cell`` example(s) per (prompt, requested)."""
    lines = ["| prompt | requested | achieved | text |", "|---|---:|---:|---|"]
    for (p, r), grp in samples.groupby(["prompt", "requested"], sort=False):
        for _, row in grp.head(per_cell).iterrows():
            lines.append(f"| {_clip(p, 30)} | {r:+.2f} | {row['achieved']:+.2f} | {_clip(row['text'], width)} |")
    return "\n".join(lines)


def summary_table(summary: dict) -> str:
    lines = ["| requested | achieved mean ± sd | n |", "|---:|---:|---:|"]
    lines += [f"| {p['requested']:+.2f} | {p['mean']:+.2f} ± {p['sd']:.2f} | {p['n']} |" for p in summary["per_target"]]
    lines.append(
        f"\nSpearman(requested, achieved) over samples: **{summary['spearman']:.3f}**; MAE {summary['mae']:.2f}; "
        f"achieved means {'strictly increase' if summary['monotone'] else 'do NOT strictly increase'} with the request."
    )
    return "\n".join(lines)
