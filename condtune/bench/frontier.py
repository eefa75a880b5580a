"""The conditional frontier against the trained baselines', pooled over seeds, with intervals.

Two readings, each per gold rater, both as margins in the rater's units:

* **each trained baseline point** (PPO, DPO, RLOO; its KL at most ``max_kl``): the conditional
  frontier's reward at that KL minus the point's. The frontier of one conditional policy
  (method, setting, checkpoint) is the most reward it reaches with no more KL
  (:func:`condtune.bench.stats.frontier_at`) from all its points (every decode and requested
  target) and the base policy (best-of-1, KL 0), two of them mixed prompt by prompt (the
  mixture's reward is the mixed rewards, its KL at most the mixed KLs, KL being convex): their
  upper concave hull up to its highest point, flat beyond it. This is the frontier target of the
  method work.
* **each conditional point at its top target**: its reward minus the trained baselines' frontier
  (all their points and the base policy, the same construction) at its KL: the baselines'
  frontier at its most generous.

A margin is a difference of points measured on the same prompts, so its interval resamples the
prompts once for all of them (:func:`condtune.bench.stats.replicate_means`, the same replicates
for every point) and rebuilds the frontiers in each replicate. Best-of-n (its KL is a bound) enters
only as the base policy. The verdict of a margin: "above" when its interval lies above 0,
"below" when under it, "level" when it spans 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from condtune.bench import stats as S
from condtune.bench.settings import CONDITIONAL_METHODS

TRAINED = ("ppo", "dpo", "rloo")
POINT_KEYS = ["method", "setting", "checkpoint", "decode", "requested"]


def _reps(samples: pd.DataFrame, raters: list[str], n_boot: int, seed: int) -> dict[tuple, dict[str, np.ndarray]]:
    """Per point (POINT_KEYS; seeds pooled): {"kl": reps, rater: reps}, all with one set of replicates."""
    ids, w = S.replicate_weights(samples["prompt_id"].to_numpy(), n_boot, seed)
    out = {}
    for key, g in samples.groupby(POINT_KEYS, sort=False, dropna=False):
        c = g["prompt_id"].to_numpy()
        out[key] = {col: S.replicate_means(g[col].to_numpy(), c, ids, w) for col in ["kl", *raters]}
    return out


def _name(key: tuple) -> str:
    method, setting, checkpoint, decode, requested = key
    tgt = "" if pd.isna(requested) else f" target {requested:+.2f}"
    return f"{method} {setting} {checkpoint} {decode}{tgt}".replace(" default", "")


def _verdict(iv: S.Interval) -> str:
    if not np.isfinite(iv.value):
        return "–"
    if np.isfinite(iv.lo) and iv.lo > 0:
        return "above"
    if np.isfinite(iv.hi) and iv.hi < 0:
        return "below"
    return "level"


def _fields(rater: str, iv: S.Interval) -> dict:
    return {f"{rater}_margin": iv.value, f"{rater}_margin_ci": iv.as_list(), f"{rater}_verdict": _verdict(iv)}


def margins(samples: pd.DataFrame, *, max_kl: float = 12.0, n_boot: int = 1000, seed: int = 0) -> dict:
    """{"vs_baseline_points": [...], "vs_baselines_frontier": [...]}: rows with ``{rater}_margin``,
    ``{rater}_margin_ci`` and ``{rater}_verdict`` for gold and, where measured, gold2 (a baseline
    point's row holds one such cell per conditional policy, under ``policies``)."""
    raters = [r for r in ("gold", "gold2") if r in samples and samples[r].notna().all()]
    if samples.empty or not raters:
        return {"vs_baseline_points": [], "vs_baselines_frontier": []}
    reps = _reps(samples, raters, n_boot, seed)
    base = [k for k in reps if k[0] == "best_of_n" and k[2] == "n_1"]
    trained = sorted((k for k in reps if k[0] in TRAINED), key=lambda k: reps[k]["kl"][0])
    policies: dict[tuple, list[tuple]] = {}
    for k in reps:
        if k[0] in CONDITIONAL_METHODS:
            policies.setdefault(k[:3], []).append(k)

    def pts(keys: list[tuple], rater: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(reps[k]["kl"], reps[k][rater]) for k in keys]

    def row(key: tuple, **extra) -> dict:
        return {"point": _name(key), "kl": float(reps[key]["kl"][0]), "gold": float(reps[key]["gold"][0]), **extra}

    near = [b for b in trained if reps[b]["kl"][0] <= max_kl]
    vs_points = [row(b, method=b[0], policies={}) for b in near]
    for pol, keys in policies.items():
        name = " ".join(map(str, pol)).replace(" default", "")
        cells: list[dict] = [{} for _ in near]
        for rater in raters:  # the frontier's margin over a point = minus the point's over the frontier
            for cell, iv in zip(cells, S.margins_over_frontier(pts(near, rater), pts(keys + base, rater))):
                cell.update(_fields(rater, iv.negated()))
        for r, cell in zip(vs_points, cells):
            r["policies"][name] = cell

    vs_frontier = []
    for keys in policies.values():
        top = max((k[4] for k in keys if not pd.isna(k[4])), default=None)
        if top is None:  # a policy evaluated without targets has no top target to compare
            continue
        tops = sorted((k for k in keys if k[4] == top), key=lambda k: reps[k]["kl"][0])
        found = [row(k) for k in tops]
        for rater in raters:
            for r, iv in zip(found, S.margins_over_frontier(pts(tops, rater), pts(trained + base, rater))):
                r.update(_fields(rater, iv))
        vs_frontier += found
    return {"vs_baseline_points": vs_points, "vs_baselines_frontier": vs_frontier}


def _cell(d: dict, rater: str) -> str:
    v, (lo, hi) = d.get(f"{rater}_margin", np.nan), d.get(f"{rater}_margin_ci", [np.nan, np.nan])
    if not np.isfinite(v):
        return "–"
    ci = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else ""
    return f"{v:+.2f}{ci} {d[f'{rater}_verdict']}"


def margins_tables(m: dict) -> str:
    """Markdown: the two readings of :func:`margins`."""
    if not m["vs_baseline_points"] and not m["vs_baselines_frontier"]:
        return "_needs a conditional method and a trained baseline_"
    out = []
    if m["vs_baseline_points"]:
        pols = list(m["vs_baseline_points"][0]["policies"])
        out += [
            "Each trained baseline point against each conditional policy's frontier (the most reward any mix of "
            "its decodes, targets and the base reaches with no more KL) at the point's KL: frontier minus "
            "point [95% CI], gold, then gold2 below it.",
            "",
            "| baseline point | KL nats | gold | " + " | ".join(pols) + " |",
            "|---|---:|---:|" + "---:|" * len(pols),
        ]
        for r in m["vs_baseline_points"]:
            cells = [_cell(r["policies"][p], "gold") + "<br>" + _cell(r["policies"][p], "gold2") for p in pols]
            out.append(f"| {r['point']} | {r['kl']:.2f} | {r['gold']:+.2f} | " + " | ".join(cells) + " |")
        out.append("")
    if m["vs_baselines_frontier"]:
        out += [
            "Each conditional point at its top target against the trained baselines' frontier (the same "
            "construction, with the base) at its KL: point minus frontier [95% CI].",
            "",
            "| conditional point | KL nats | gold | margin, gold | margin, gold2 |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {r['point']} | {r['kl']:.2f} | {r['gold']:+.2f} | {_cell(r, 'gold')} | {_cell(r, 'gold2')} |"
            for r in m["vs_baselines_frontier"]
        ]
    return "\n".join(out)


def costs(rows: list[dict], *, max_kl: float = 12.0) -> list[dict]:
    """Per seed and conditional policy (method, setting, checkpoint): its cost (the wall-clock of all its
    data generation, scoring and training), its best decode up to ``max_kl`` (top target's gold),
    and for each trained baseline setting the wall-clock of its first checkpoint with at least that
    gold (None: none reached it), with the wall-clock of each baseline's whole sweep (every setting
    to its last checkpoint): the cost of a frontier against the cost of one. Costs are of one
    seed's pieces, never compared across seeds (they may run on different machines)."""
    out = []
    rows = [r for r in rows if "reward/gold" in r and "kl/exact" in r]  # a row without them cannot be placed
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        runs: dict[tuple, list[dict]] = {}
        for r in mine:
            if r["method"] in TRAINED:
                runs.setdefault((r["method"], r["setting"]), []).append(r)
        sweep = {}
        for (method, _), rs in runs.items():
            sweep[method] = sweep.get(method, 0.0) + max(r["cost/wall_clock_s"] for r in rs)
        policies: dict[tuple, list[dict]] = {}
        for r in mine:
            if r["method"] in CONDITIONAL_METHODS and r["kl/exact"] <= max_kl:
                policies.setdefault((r["method"], r["setting"], r["checkpoint"]), []).append(r)
        for (method, setting, checkpoint), rs in policies.items():
            best = max(rs, key=lambda r: r["reward/gold"])
            reach = {}
            for (bm, bs), brs in sorted(runs.items()):
                hit = [r for r in sorted(brs, key=lambda r: r["step"]) if r["reward/gold"] >= best["reward/gold"]]
                reach[f"{bm} {bs}"] = (
                    {
                        "checkpoint": hit[0]["checkpoint"],
                        "wall_clock_s": hit[0]["cost/wall_clock_s"],
                        "kl": hit[0]["kl/exact"],
                    }
                    if hit
                    else None
                )
            out.append(
                {
                    "seed": seed,
                    "policy": f"{method} {setting} {checkpoint}".replace(" default", ""),
                    "wall_clock_s": best["cost/wall_clock_s"],
                    "best_decode": best["decode"],
                    "gold": best["reward/gold"],
                    "kl": best["kl/exact"],
                    "first_reaching": reach,
                    "sweep_wall_clock_s": sweep,
                }
            )
    return out


def costs_table(rows: list[dict]) -> str:
    if not rows:
        return "_needs a conditional method_"
    lines = [
        "| seed | conditional policy | its wall-clock s | best decode ≤ 12 nats: gold at KL "
        "| first baseline checkpoint with that gold: wall-clock s (KL) | each baseline's whole sweep, s |",
        "|---:|---|---:|---|---|---|",
    ]
    for r in rows:
        reach = "; ".join(
            f"{k} {v['checkpoint']}: {v['wall_clock_s']:.0f} ({v['kl']:.1f})" if v else f"{k}: never"
            for k, v in r["first_reaching"].items()
        )
        sweep = "; ".join(f"{k} {v:.0f}" for k, v in r["sweep_wall_clock_s"].items())
        lines.append(
            f"| {r['seed']} | {r['policy']} | {r['wall_clock_s']:.0f} | {r['best_decode']}: {r['gold']:+.2f} at "
            f"{r['kl']:.2f} | {reach or '–'} | {sweep or '–'} |"
        )
    return "\n".join(lines)
