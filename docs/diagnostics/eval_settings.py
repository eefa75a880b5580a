"""Re-evaluate one conditional checkpoint of a benchmark run under other evaluation settings
(docs/benchmarks.md, "Why controllability is weaker here than in the quickstart").

    python docs/diagnostics/eval_settings.py runs/bench_reduced step_120 opening_words=0
    python docs/diagnostics/eval_settings.py runs/bench_reduced step_120 temperature=0.8 top_p=0.95

Uses the run's own config, scorers and seed-0 checkpoint; prints the per-sample gold Spearman,
whether the achieved gold means increase, and the mean per requested target. Writes nothing.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from condtune import config as C
from condtune.bench import runner as R
from condtune.bench.checkpoints import load_checkpoints


def main(out: str, checkpoint: str, overrides: list[str]) -> None:
    torch.set_num_threads(2)
    cfg = C.parse(R.BenchConfig, ["--config", str(Path(out) / "config.json")])  # the run's own settings (JSON is YAML)
    opts = dict(o.split("=", 1) for o in overrides)
    words = int(opts.pop("opening_words", cfg.opening_words))
    cfg = replace(cfg, sampling=replace(cfg.sampling, **{k: type(getattr(cfg.sampling, k))(v) for k, v in opts.items()}))
    ctx = R.build_context(cfg)
    held = ctx.heldout_items["completion"]
    idx = np.random.default_rng(0).permutation(len(held))[: cfg.n_eval_prompts]
    ctx.eval_prompts = [R.make_prompt(R.header(cfg), held.iloc[i], words) for i in idx]
    ck = next(c for c in load_checkpoints(ctx.out / "seed_0" / "conditional" / "checkpoints.json") if c.name == checkpoint)
    row, _ = R.evaluate(ctx, ck, 0)
    means = " ".join(f"{t['reward/gold']:+.2f}" for t in row["targets"])
    print(f"opening_words={words} {cfg.sampling}: Spearman(requested, gold) {row['cond/spearman_gold']:+.3f}, "
          f"increasing {row['cond/monotone_gold']}, gold means {means}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
