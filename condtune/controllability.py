"""Controllability of a conditioned policy: requested vs achieved score.

:func:`sample_at_targets` generates ``n`` completions per (prompt, target), scores them (and, given a
``judge`` of another family, judges them; with ``kl=True``, measures each sample's exact KL from the
base model, :func:`kl_from_base`);
:func:`summarise` gives per-target achieved mean ± sd, Spearman(requested, achieved) over
samples, and MAE; :func:`markdown_table` renders prompt | requested | achieved | text.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from condtune.kl import sampled_kl
from condtune.metrics import mae, spearman
from condtune.sampling import Samples, SamplingConfig


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
    judge=None,
    kl: bool = False,
) -> pd.DataFrame:
    """One row per sample: prompt, requested, bin, text, n_tokens, achieved (scorer score); ``judge``
    (the judge's score) and ``kl`` (nats from the base model) when asked. Each request is decoded as
    the policy's card recommends."""
    rows = []
    for t_i, target in enumerate(targets):
        s = policy.generate(
            prompts, score=target, num_return_sequences=n, tags=tags, sampling=sampling, seed=seed + t_i, progress=True
        )
        b = policy.bin_for(target)
        kls = kl_from_base(policy, prompts, s, score=target, tags=tags, sampling=sampling) if kl else None
        for i, (p, texts, counts) in enumerate(zip(prompts, s.texts, s.n_tokens)):
            rows += [
                {"prompt": p, "requested": float(target), "bin": b + 1, "text": t, "n_tokens": c}
                | ({"kl": float(kls[i * n + j])} if kls is not None else {})
                for j, (t, c) in enumerate(zip(texts, counts))
            ]
    df = pd.DataFrame(rows)
    df["achieved"] = scorer.score_pairs(df["prompt"].tolist(), df["text"].tolist())
    if judge is not None:
        df["judge"] = judge.score_pairs(df["prompt"].tolist(), df["text"].tolist())
    return df


def kl_from_base(
    policy, prompts: Sequence[str], samples: Samples, *, score: float, tags: dict | None, sampling: SamplingConfig
) -> np.ndarray:
    """Each sample's exact KL (nats) from the base model reading the plain prompt
    (:func:`condtune.kl.sampled_kl`), under the distribution it was drawn from: the policy's recommended
    decode for ``score`` (:meth:`~condtune.generate.ConditionalPolicy.resolve_decode`), at ``sampling``'s
    temperature and top-p; in row order (prompt by prompt, then its samples)."""
    anchored, guidance, contrast = policy.resolve_decode(score=score)
    tok, base = policy.tokenizer, policy.base_model()
    flat = [p for p, ids in zip(prompts, samples.response_ids) for _ in ids]

    def enc(texts: list[str]) -> list[list[int]]:
        return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]

    guided = guidance != 1.0 or anchored
    return sampled_kl(
        policy.model,
        base,
        contexts=enc([policy.tagged(p, score=score, tags=tags) for p in flat]),
        ref_contexts=enc(flat),
        responses=[list(r) for ids in samples.response_ids for r in ids],
        pad_id=tok.pad_token_id,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        guidance=guidance,
        uncond_contexts=enc([policy.tagged(p, score=contrast, tags=tags) for p in flat]) if guided else None,
        anchored=anchored,
    )


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


def quickstart_table(samples: pd.DataFrame, judge_name: str = "judge") -> str:
    """Per requested score: the own scorer's mean ± sd, the judge's mean, the mean KL from the base (nats)
    and the count; then each rater's Spearman(requested, achieved) over samples."""
    own, judged = summarise(samples), summarise(samples, "judge") if "judge" in samples else None
    kl = samples.groupby("requested")["kl"].mean() if "kl" in samples else None
    lines = [
        f"| requested | own scorer mean ± sd | {judge_name} mean | KL from base (nats) | n |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, p in enumerate(own["per_target"]):
        j = f"{judged['per_target'][i]['mean']:+.3f}" if judged else "n/a"
        k = f"{kl[p['requested']]:.2f}" if kl is not None else "n/a"
        lines.append(f"| {p['requested']:+.2f} | {p['mean']:+.2f} ± {p['sd']:.2f} | {j} | {k} | {p['n']} |")
    for name, s in (("own scorer", own), (judge_name, judged)):
        if s:
            rising = "strictly increase" if s["monotone"] else "do NOT strictly increase"
            lines.append(f"\n{name}: Spearman(requested, achieved) **{s['spearman']:.3f}**; means {rising}.")
    return "\n".join(lines)


def summary_table(summary: dict) -> str:
    lines = ["| requested | achieved mean ± sd | n |", "|---:|---:|---:|"]
    lines += [f"| {p['requested']:+.2f} | {p['mean']:+.2f} ± {p['sd']:.2f} | {p['n']} |" for p in summary["per_target"]]
    lines.append(
        f"\nSpearman(requested, achieved) over samples: **{summary['spearman']:.3f}**; MAE {summary['mae']:.2f}; "
        f"achieved means {'strictly increase' if summary['monotone'] else 'do NOT strictly increase'} with the request."
    )
    return "\n".join(lines)
