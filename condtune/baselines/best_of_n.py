"""Best-of-n reranking by the proxy scorer, as a benchmark method with no training.

One pool of ``max(ns)`` samples per prompt is drawn from the base policy and scored once.
For each n the pool is cut into ``max(ns) // n`` disjoint groups of n consecutive samples per
prompt, and each group's highest-scoring sample is one pick: every pick is a genuine best-of-n
draw, and small n get more picks (less noise) from the same samples.

Cost of best-of-n at n, for answering the prompt set once: n samples and n scorer calls per
prompt. Its wall-clock is n x prompts x the measured seconds per (sample + score) of the pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from condtune.checkpointing import Checkpoint
from condtune.io import read_json, write_json
from condtune.tables import read_table, write_table


@dataclass
class BestOfNSettings:
    ns: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    """candidates per pick; the pool holds max(ns) samples per prompt"""


def group_picks(scores: np.ndarray, n: int) -> list[tuple[int, int]]:
    """(prompt, sample) index of the best sample in each disjoint group of ``n`` consecutive
    samples of each prompt's row of ``scores`` [prompts, pool]."""
    picks = []
    for p, row in enumerate(np.asarray(scores)):
        for g in range(len(row) // n):
            picks.append((p, g * n + int(np.argmax(row[g * n : (g + 1) * n]))))
    return picks


def draw_pool(prompts: Sequence[str], pool: int, *, sample_fn: Callable, score_fn: Callable, out: Path) -> dict:
    """Sample and score the pool once (cached in ``out/pool.jsonl``); returns the pool and its cost."""
    if (out / "pool.json").exists():
        return {**read_json(out / "pool.json"), "rows": read_table(out / "pool.jsonl")}
    t0 = time.perf_counter()
    texts, n_tokens = sample_fn(list(prompts), pool)  # flat, prompt-major
    flat_prompts = [p for p in prompts for _ in range(pool)]
    scores = np.asarray(score_fn(flat_prompts, texts), dtype=float)
    seconds = time.perf_counter() - t0

    rows = pd.DataFrame({"prompt": flat_prompts, "text": texts, "n_tokens": n_tokens, "proxy": scores})
    write_table(rows, out / "pool.jsonl")
    meta = {"seconds": seconds, "pool": pool, "n_prompts": len(prompts)}
    write_json(out / "pool.json", meta)
    return {**meta, "rows": rows}


def train_best_of_n(
    prompts: Sequence[str], s: BestOfNSettings, *, sample_fn: Callable, score_fn: Callable, out_dir: str | Path
) -> list[Checkpoint]:
    """One "checkpoint" per n: a JSONL of picks with the cost of answering ``prompts`` once."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pool = draw_pool(prompts, max(s.ns), sample_fn=sample_fn, score_fn=score_fn, out=out)
    rows = pool["rows"]
    per_sample = pool["seconds"] / len(rows)
    mean_tokens = float(rows["n_tokens"].mean())
    scores = rows["proxy"].to_numpy().reshape(len(prompts), pool["pool"])
    ckpts = []
    for n in sorted(s.ns):
        picks = [p * pool["pool"] + j for p, j in group_picks(scores, n)]
        path = out / f"picks_n{n}.jsonl"
        write_table(rows.iloc[picks].reset_index(drop=True), path)
        cost = n * len(prompts)
        ckpts.append(
            Checkpoint(
                "best_of_n",
                name=f"n_{n}",
                step=n,
                wall_clock_s=cost * per_sample,
                generated_tokens=int(round(cost * mean_tokens)),
                scorer_calls=cost,
                samples=str(path),
                extra={"n": n, "picks": len(picks)},
            )
        )
    return ckpts
