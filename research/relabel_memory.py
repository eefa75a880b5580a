"""Where the streaming relabel's memory goes: the process's RSS sampled against the rows scored so far
(docs/benchmarks.md, "Relabel at scale").

    python research/relabel_memory.py runs/scale/rows_100000_mixed.parquet \\
        runs/bench_sentiment/scorers/proxy runs/scale/mem_100000 [--trim] [--fp32]

Runs the same ``relabel_stream`` call as ``condtune relabel stream=true tag_columns=[domain]``, in
process, with a thread that reads VmRSS every half second, and writes ``<out>.rss.csv`` (seconds, rows
scored, RSS MiB). ``--trim`` also calls glibc's ``malloc_trim(0)`` after every scored batch: if the RSS
then stays flat, the growth was freed memory that the allocator kept, not live objects. ``--fp32``
scores without bf16 autocast on a CPU that has bf16 instructions (fp32 matmuls do not go through
oneDNN's bf16 kernels and their per-shape primitive cache). Environment
variables such as ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` or ``MALLOC_ARENA_MAX`` apply as usual; the
summary line names the ones that are set.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from condtune.relabel_stream import relabel_stream
from condtune.scorer import Scorer

KNOBS = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main(data: str, scorer_dir: str, out: str, trim: bool, fp32: bool) -> None:
    if fp32:
        import condtune.modeling

        condtune.modeling.cpu_supports_bf16 = lambda: False
    scorer = Scorer.load(scorer_dir)
    if trim:
        libc = ctypes.CDLL("libc.so.6")
        score = scorer.score

        def trimmed(*a, **kw):
            res = score(*a, **kw)
            libc.malloc_trim(0)
            return res

        scorer.score = trimmed
    samples: list[tuple[float, int, float]] = []
    done = threading.Event()
    t0 = time.monotonic()
    csv = open(f"{out}.rss.csv", "w", buffering=1)  # line by line: a run cut off keeps its curve
    csv.write("seconds,rows_scored,rss_mib\n")

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.monotonic() - t0, scorer.calls, rss_mib()))
            csv.write("{:.1f},{},{:.1f}\n".format(*samples[-1]))

    shutil.rmtree(out, ignore_errors=True)
    Path(f"{out}.card.json").unlink(missing_ok=True)
    thread = threading.Thread(target=sample, daemon=True)
    start_rss = rss_mib()
    thread.start()
    relabel_stream(data, scorer, out, tag_columns=["domain"], scorer_name=scorer_dir)
    done.set()
    thread.join()
    csv.close()
    knobs = {k: os.environ[k] for k in KNOBS if k in os.environ}
    where = next(scorer.model.parameters()).device
    print(f"{data} on {where}, knobs {knobs} trim={trim} fp32={fp32}: RSS after loading {start_rss:.0f} MiB")
    n = max(s[1] for s in samples)
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):  # the highest RSS seen up to each share of the rows
        upto = [r for _, c, r in samples if c <= frac * n]
        print(f"  rows scored <= {int(frac * n):>8}: max RSS {max(upto, default=float('nan')):.0f} MiB")
    print(f"  peak {max(r for *_, r in samples):.0f} MiB over {samples[-1][0]:.0f} s")


if __name__ == "__main__":
    flags = {"--trim", "--fp32"}
    args = [a for a in sys.argv[1:] if a not in flags]
    if len(args) != 3:
        sys.exit(__doc__)
    main(*args, trim="--trim" in sys.argv[1:], fp32="--fp32" in sys.argv[1:])
