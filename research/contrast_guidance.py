"""Anchored guidance on one conditional checkpoint at the top target, against a chosen contrast:
the untagged prompt (the benchmark's decode: base + g * (log pi(.|top) - log pi(.|no tag))) or the
bottom target's tag (base + g * (log pi(.|top) - log pi(.|bottom)), the "negative prompt" of
classifier-free guidance). Same raters, reference and exact KL as the benchmark's evaluation.

By default it samples on 64 of the run's *training* prompts, not its held-out evaluation prompts,
so that trying decodes here does not select on the benchmark's test set (``--prompts eval`` to
use those anyway).

    ck=seed_0/conditional/$(ls runs/bench_sentiment/seed_0/conditional | grep tag_contrast)/step_60
    python research/contrast_guidance.py runs/bench_sentiment "$ck" --contrast none --g 1
    python research/contrast_guidance.py runs/bench_sentiment "$ck" --contrast bottom --g 0.5 0.75
    python research/contrast_guidance.py runs/bench_sentiment "$ck" --contrast bottom --g 1.5 \
        --temperature 1 0.8

Prints, per decode, the top target's mean gold, gold2 and proxy and the exact KL, each with a 95%
bootstrap interval over prompts. Writes nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from condtune import config as C
from condtune.bench.evaluation import measure
from condtune.bench.runner import build_context
from condtune.bench.settings import BenchConfig
from condtune.bench.stats import mean_ci
from condtune.generate import ConditionalPolicy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the benchmark run's folder (its config.json, raters and prompts)")
    ap.add_argument("checkpoint", help="a conditional checkpoint, relative to out")
    ap.add_argument("--contrast", choices=["none", "bottom"], default="none")
    ap.add_argument("--g", type=float, nargs="+", default=[1.0], help="guidance scales")
    ap.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="sampling temperatures")
    ap.add_argument("--prompts", choices=["train", "eval"], default="train")
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = C.parse(BenchConfig, ["--config", str(Path(a.out) / "config.json")])  # the run's own settings
    ctx = build_context(replace(cfg, output_dir=a.out))
    pool = ctx.prompts.train if a.prompts == "train" else ctx.prompts.eval
    ctx = replace(ctx, prompts=ctx.prompts._replace(eval=pool[: a.n_prompts]))
    policy = ConditionalPolicy.load(str(Path(a.out) / a.checkpoint))
    centers = policy.card.binning.centers
    plain = ctx.prompts.eval
    other = [policy.tagged(p) if a.contrast == "none" else policy.tagged(p, score=float(centers[0])) for p in plain]
    top = float(centers[-1])
    tagged = [policy.tagged(p, score=top) for p in plain]
    print(f"top target {top:+.2f}, contrast {a.contrast}, {len(plain)} {a.prompts} prompts x {cfg.eval_n}")
    for g, t in [(g, t) for t in a.temperature for g in a.g]:
        df = measure(
            ctx,
            policy.model,
            policy.tokenizer,
            inputs=tagged,
            uncond=other,
            temperature=t,
            guidance=g,
            seed=4,  # the benchmark's seed of the top target at seed 0 (seed * 1000 + target index)
            desc=f"contrast {a.contrast} g={g:g} T={t:g}",
            anchored=True,
        )
        cells = []
        for col in ("gold", "gold2", "proxy", "kl"):
            if col in df:
                iv = mean_ci(df[col].to_numpy(), df["prompt_id"].to_numpy(), n_boot=cfg.n_boot)
                cells.append(f"{col} {iv.value:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}]")
        print(f"g={g:g} T={t:g}: " + ", ".join(cells), flush=True)
        print("   e.g. " + " | ".join(df["text"].head(3).tolist()), flush=True)


if __name__ == "__main__":
    main()
