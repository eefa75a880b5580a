"""Each conditional decode against the trained baselines of the same seed, at the decode's own KL
(docs/benchmarks.md §3, "seed 1's conditional").

    python research/frontier_margin.py docs/results/bench_sentiment/results.jsonl [gold|gold2]

For each seed, two envelopes of the trained baselines (PPO β, DPO β, RLOO (lr, β); their
checkpoints' (exact KL, top-target gold) points) at a KL:
- *lines*: each setting is a line through its checkpoints; the highest of the lines that span the
  KL, linearly interpolated, never extrapolated ("–" where none spans it);
- *hull*: the upper concave hull of all those points and the base policy (KL 0, best-of-1's gold).
  Any point under it is reached by mixing two trained policies prompt by prompt (the mixture's gold
  is the mixed golds, its KL at most the mixed KLs, KL being convex), so it is the baselines'
  frontier at its most generous.
Each conditional decode of that seed (its top target) is set against both at its own KL, so a
margin compares points of one seed and one protocol. Best-of-n (a bound on its KL) stays out.
"""

from __future__ import annotations

import json
import sys

from condtune.bench.stats import line_envelope, upper_hull

TRAINED = ("ppo", "dpo", "rloo")


def main(path: str, rater: str = "gold") -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    key = f"reward/{rater}"
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        lines: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in mine:
            if r["method"] in TRAINED:
                lines.setdefault((r["method"], r["setting"]), []).append((r["kl/exact"], r[key]))
        polys = list(lines.values())  # line_envelope and upper_hull sort the points themselves
        base = [(0.0, r[key]) for r in mine if r["method"] == "best_of_n" and r["checkpoint"] == "n_1"]
        hull = upper_hull([p for v in polys for p in v] + base)
        cond = [r for r in mine if r["method"].startswith("conditional")]
        if not cond or not polys:
            continue
        print(f"\nseed {seed} ({rater}; {len(polys)} trained baseline lines)")
        print("| method | setting | decode | KL nats | conditional | lines | margin | hull | margin |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for r in sorted(cond, key=lambda r: (r["method"], r["setting"], r["kl/exact"])):
            cells = []
            for env in (line_envelope(polys, r["kl/exact"]), line_envelope([hull], r["kl/exact"])):
                cells += ["–", "–"] if env is None else [f"{env:+.2f}", f"{r[key] - env:+.2f}"]
            print(
                f"| {r['method']} | {r['setting']} | {r['decode']} | {r['kl/exact']:.2f} | {r[key]:+.2f} | "
                + " | ".join(cells)
                + " |"
            )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
