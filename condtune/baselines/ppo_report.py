"""What a PPO run shows: its metric rows (``output_dir/metrics.jsonl``, one per update), a
table of sample completions every ``sample_every`` updates, and a summary of the first and
the last updates for the card and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from condtune.baselines import rl_math as M
from condtune.io import read_jsonl, write_jsonl


def read_metrics(path: str | Path) -> list[dict]:
    """The logged metric rows; ``[]`` before the first update is logged."""
    return read_jsonl(path, missing_ok=True)


def append_metrics(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint a run resumes from."""
    if path.exists():
        write_jsonl(path, [r for r in read_metrics(path) if r.get("step", 0) <= step])


def print_samples(
    prompts: Sequence[str], completions: Sequence[str], scores: Sequence[float], *, step: int, k: int = 4
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"PPO samples, update {step}", show_lines=True)
    for col in ("prompt", "score", "completion"):
        table.add_column(col, overflow="fold")
    for p, c, s in list(zip(prompts, completions, scores))[:k]:
        table.add_row(p, f"{s:+.2f}", c)
    Console(stderr=True).print(table)


def summarise(rows: list[dict], last: int = 5) -> dict:
    """Mean of each metric over the first and the last ``last`` updates."""
    if not rows:
        return {}
    keys = [M.METRIC_SCORES, M.METRIC_KL, M.METRIC_RLHF_REWARD, M.METRIC_KL_COEF, M.METRIC_TIME_STEP]
    head, tail = rows[:last], rows[-last:]
    return {
        **{f"first/{k}": float(np.mean([r[k] for r in head])) for k in keys},
        **{f"last/{k}": float(np.mean([r[k] for r in tail])) for k in keys},
    }
