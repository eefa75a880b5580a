"""Inputs for the streaming relabel's memory/throughput table (docs/benchmarks.md, "Relabel at scale").

    python docs/diagnostics/relabel_scale.py runs/scale 10000 100000 1000000
    /usr/bin/time -v condtune relabel stream=true data=runs/scale/rows_100000.parquet \\
        scorer=<a scorer> tag_columns=[domain] out=runs/scale/tagged_100000

Writes ``rows_N.parquet``: the 23,703 VADER texts (all four domains, their headers as prompts)
repeated to N rows, each copy varied (a copy number appended, so no two rows are the same text),
written in row groups of 50,000 so that writing a million rows never holds them all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from condtune.vader import vader_corpus


def write_rows(path: Path, n: int, chunk: int = 50_000) -> None:
    base = vader_corpus()[["prompt", "completion", "domain"]]
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
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for n in map(int, sys.argv[2:]):
        write_rows(out / f"rows_{n}.parquet", n)
        print(out / f"rows_{n}.parquet")
