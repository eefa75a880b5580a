"""The results store that makes reruns resume: one JSON line per evaluated (method, setting,
seed, checkpoint, decode) in ``out/results.jsonl``, its per-sample table beside it in
``out/samples/``. A line is written only after its samples, so a line means a finished result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from condtune.io import read_jsonl
from condtune.tables import read_table, write_table


def results_path(out: Path) -> Path:
    return Path(out) / "results.jsonl"


def read_results(out: Path) -> list[dict]:
    return read_jsonl(results_path(out), missing_ok=True)


def key(row: dict) -> tuple:
    return row["method"], row.get("setting", "default"), int(row["seed"]), row["checkpoint"], row.get("decode", "T=1")


def done_keys(out: Path) -> set[tuple]:
    return {key(r) for r in read_results(out)}


def samples_path(out: Path, row: dict) -> Path:
    method, setting, seed, ck, dec = key(row)
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "=.-_" else "_" for c in f"{setting}__{dec}")
    return Path(out) / "samples" / method / f"seed{seed}_{ck}_{safe}.jsonl"


def append_result(out: Path, row: dict, samples: pd.DataFrame) -> None:
    """Samples first, then the result line (one write + flush), so a finished line means a finished result."""
    path = samples_path(out, row)
    write_table(samples, path)
    with results_path(out).open("a") as fh:
        fh.write(json.dumps({**row, "samples": str(path.relative_to(out))}) + "\n")
        fh.flush()


def read_samples(out: Path, row: dict) -> pd.DataFrame:
    return read_table(Path(out) / row["samples"])
