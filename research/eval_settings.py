"""Re-evaluate one conditional checkpoint of a benchmark run under other decode settings, on the
run's own prompts and raters (the same code path as the benchmark's evaluation).

    ck=seed_0/conditional/default/step_60
    python research/eval_settings.py runs/bench_dev $ck temperature=0.8 top_p=0.95
    python research/eval_settings.py runs/bench_dev $ck guidance=2

Prints per-sample Spearman(requested, gold), whether the gold means increase, the mean per
requested target and the exact KL of the (temperature, top-p, guidance) distribution. Writes nothing.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

from condtune import config as C
from condtune.bench.evaluation import evaluate
from condtune.bench.runner import build_context
from condtune.bench.settings import BenchConfig
from condtune.checkpointing import Checkpoint


def main(out: str, checkpoint: str, overrides: list[str]) -> None:
    torch.set_num_threads(2)
    cfg = C.parse(BenchConfig, ["--config", str(Path(out) / "config.json")])  # the run's own settings (JSON is YAML)
    opts = dict(o.split("=", 1) for o in overrides)
    temperature, guidance = float(opts.pop("temperature", cfg.sampling.temperature)), float(opts.pop("guidance", 1.0))
    cfg = replace(cfg, output_dir=out, sampling=replace(cfg.sampling, **{k: float(v) for k, v in opts.items()}))
    ctx = build_context(cfg)  # the run's cached raters and its shared prompts
    ck = Checkpoint("conditional", name=Path(checkpoint).name, path=str(Path(out) / checkpoint), conditional=True)
    row, _ = evaluate(ctx, ck, seed=0, temperature=temperature, guidance=guidance)
    means = " ".join(f"{t['reward/gold']:+.2f}" for t in row["targets"])
    print(
        f"{row['decode']} top_p={cfg.sampling.top_p}: Spearman(requested, gold) {row['cond/spearman_gold']:+.3f}, "
        f"increasing {row['cond/monotone_gold']}, gold means {means}, KL of the top target {row['kl/exact']:.2f}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
