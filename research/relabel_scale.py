"""Inputs for the streaming relabel's memory/throughput table (docs/benchmarks.md, "Relabel at scale").

    python research/relabel_scale.py runs/scale 10000 100000 1000000
    /usr/bin/time -v condtune relabel stream=true data=runs/scale/rows_100000.parquet \\
        scorer=<a scorer> tag_columns=[domain] output_dir=runs/scale/tagged_100000

Writes ``rows_N.parquet``: the 23,703 VADER texts (all four domains, their headers as prompts)
repeated to N rows, each copy varied (a copy number appended, so no two rows are the same text),
written in row groups of 50,000 so that writing a million rows never holds them all.

``--mixed`` writes ``rows_N_mixed.parquet`` instead: the texts in a fixed random order (seed 0), so
that the first 10,000 rows already hold all four domains' lengths. It separates what memory follows:
the row count, or the longest texts met so far.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from condtune.vader import vader_corpus


def write_rows(path: Path, n: int, chunk: int = 50_000, mixed: bool = False) -> None:
    base = vader_corpus()[["prompt", "completion", "domain"]]
    if mixed:
        base = base.sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pq.ParquetWriter(
        path, pa.schema([("prompt", pa.string()), ("completion", pa.string()), ("domain", pa.string())])
    ) as w:
        for start in range(0, n, chunk):
            idx = [i % len(base) for i in range(start, min(n, start + chunk))]
            part = base.iloc[idx].reset_index(drop=True)
            copy = [i // len(base) for i in range(start, min(n, start + chunk))]
            part["completion"] = [t if c == 0 else f"{t} ({c})" for t, c in zip(part["completion"], copy)]
            w.write_table(pa.Table.from_pandas(part, schema=w.schema, preserve_index=False))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--mixed"]
    mixed = "--mixed" in sys.argv[1:]
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for n in map(int, args[1:]):
        path = out / f"rows_{n}{'_mixed' if mixed else ''}.parquet"
        write_rows(path, n, mixed=mixed)
        print(path)
