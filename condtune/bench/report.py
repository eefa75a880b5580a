"""Benchmark report: results.jsonl + samples/ -> summary.json (the fixed schema), results.csv,
table.md, and the two plots of :mod:`condtune.bench.plots`: frontier.png (reward against exact
KL, 95% intervals on both axes) and reliability.png (requested against achieved score, beside the
data's own ceiling).

Every interval is a 95% percentile bootstrap that resamples prompts, pooled over seeds
(:mod:`condtune.bench.stats`); all metrics of one point use the same replicates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from condtune.bench import frontier, store
from condtune.bench import metrics as BM
from condtune.bench import stats as S
from condtune.bench.plots import final_checkpoints, frontier_plot, reliability_plot
from condtune.bench.settings import CONDITIONAL_METHODS, UNTAGGED
from condtune.io import write_json, write_text
from condtune.tables import write_table

RUN_KEYS = ["method", "setting", "checkpoint", "step", "decode", "temperature", "guidance", "anchored", "contrast"]


def load_samples(out: Path, rows: list[dict]) -> pd.DataFrame:
    """Every evaluated sample, with its result row's keys and cost."""
    frames = []
    for r in rows:
        df = store.read_samples(out, r)
        keep = {
            k: r.get(k, d)
            for k, d in (
                ("setting", "default"),
                ("decode", "T=1"),
                ("temperature", 1.0),
                ("guidance", 1.0),
                ("anchored", False),
                ("contrast", UNTAGGED),
            )
        }
        frames.append(
            df.assign(
                method=r["method"],
                seed=r["seed"],
                checkpoint=r["checkpoint"],
                step=r["step"],
                wall=r[BM.WALL],
                samples_per_output=r.get("samples_per_output", 1),
                **keep,
            )
        )
    df = pd.concat(frames, ignore_index=True)
    if "requested" not in df:
        df["requested"] = np.nan
    return pool_targets(df)


def pool_targets(samples: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with each requested target replaced by its bin's mean over seeds. A run whose bins
    are refit per seed (the online rounds refit them over each seed's pool) requests slightly other
    targets in each seed; its seeds pool bin by bin (the k-th lowest target of each seed), at the
    bins' mean target. Where every seed requests the same targets, nothing changes."""
    asked = samples["requested"].notna()
    if not asked.any():
        return samples
    df = samples.copy()
    rows = df[asked]
    bins = rows.groupby(RUN_KEYS + ["seed"], sort=False, dropna=False)["requested"].rank(method="dense")
    by_bin = rows.assign(bin=bins).groupby(RUN_KEYS + ["bin"], sort=False, dropna=False)["requested"]
    nominal = by_bin.transform("mean").where(by_bin.transform("nunique") > 1, rows["requested"])  # equal: as is
    df.loc[asked, "requested"] = nominal
    return df


def point_stats(g: pd.DataFrame, n_boot: int) -> dict:
    """Rewards, KL and distinct-2 of one point, each with its interval (the same replicates)."""
    c = g["prompt_id"].to_numpy()
    out = {"seeds": int(g["seed"].nunique()), "n_samples": int(len(g))}
    for col in ("gold", "gold2", "proxy", "kl"):
        if col in g and g[col].notna().all():
            out.update(S.ci_fields(col, S.mean_ci(g[col].to_numpy(), c, n_boot=n_boot)))
    out.update(S.ci_fields("distinct2", S.distinct_n_ci(g["text"].fillna("").tolist(), c, n=2, n_boot=n_boot)))
    seeds = g.groupby("seed")["wall"].first()
    out.update({"wall_clock_s": float(seeds.mean()), "samples_per_output": int(g["samples_per_output"].iloc[0])})
    return out


def points(samples: pd.DataFrame, n_boot: int) -> list[dict]:
    """Every (method, setting, checkpoint, decode [, requested target]) on the reward-KL plane."""
    out = []
    keys = RUN_KEYS + ["requested"]
    for k, g in samples.groupby(keys, sort=False, dropna=False):
        d = dict(zip(keys, k))
        d["target"] = None if pd.isna(d.pop("requested")) else float(k[-1])
        out.append({**d, **point_stats(g, n_boot)})
    return sorted(out, key=lambda p: (p["method"], p["setting"], p["decode"], p["step"], p["target"] or 0))


def controllability(samples: pd.DataFrame, n_boot: int) -> list[dict]:
    """Per conditional (method, setting, checkpoint, decode): Spearman(requested, achieved) and MAE
    over samples with intervals, achieved means per target (pooled), strictly-increasing seeds."""
    out = []
    cond = samples[samples["method"].isin(CONDITIONAL_METHODS)]
    for k, g in cond.groupby(RUN_KEYS, sort=False):
        c = g["prompt_id"].to_numpy()
        row = {
            **dict(zip(RUN_KEYS, k)),
            "seeds": int(g["seed"].nunique()),
            "targets": sorted(g["requested"].unique().tolist()),
        }
        for rater in ("gold", "gold2", "proxy"):
            if rater not in g:
                continue
            sp = S.spearman_ci(g["requested"].to_numpy(), g[rater].to_numpy(), c, n_boot=n_boot)
            row.update({f"spearman_{rater}": sp.value, f"spearman_{rater}_ci": sp.as_list()})
            means = [
                S.mean_ci(t[rater].to_numpy(), t["prompt_id"].to_numpy(), n_boot=n_boot)
                for _, t in g.groupby("requested")
            ]
            row.update({f"means_{rater}": [m.value for m in means], f"means_{rater}_ci": [m.as_list() for m in means]})
            by_seed = [s.groupby("requested")[rater].mean().tolist() for _, s in g.groupby("seed")]
            row[f"monotone_seeds_{rater}"] = S.monotone_share(by_seed)[0]
        mae = S.mae_ci(g["requested"].to_numpy(), g["gold"].to_numpy(), c, n_boot=n_boot)
        row.update(
            {
                "mae_gold": mae.value,
                "mae_gold_ci": mae.as_list(),
                "monotone_seeds": row["monotone_seeds_gold"],
                "spearman_ci": row["spearman_gold_ci"],
            }
        )  # the schema's name for the gold interval
        out.append(row)
    return out


def summary(rows: list[dict], samples: pd.DataFrame, *, ceilings: dict, protocol: dict) -> dict:
    """The fixed results schema (docs/results/*.json)."""
    n_boot = int(protocol.get("n_boot", 1000))
    return {
        "task": protocol.get("task"),
        "protocol": protocol,
        "points": points(samples, n_boot),
        "controllability": controllability(samples, n_boot),
        "ceiling": ceilings.get("conditional", {}),
        "ceilings": ceilings,
        "frontier_margins": frontier.margins(samples, n_boot=n_boot),
        "costs": frontier.costs(rows),
    }


# ----------------------------------------------------------------------------- markdown


def _ci(p: dict, key: str, fmt: str = "{:+.2f}") -> str:
    if p.get(key) is None or not np.isfinite(p[key]):
        return "–"
    lo, hi = p.get(f"{key}_ci", [np.nan, np.nan])
    return fmt.format(p[key]) + (f" [{fmt.format(lo)}, {fmt.format(hi)}]" if np.isfinite(lo) else "")


def points_table(pts: list[dict]) -> str:
    lines = [
        "| method | setting | checkpoint | decode | target | seeds | gold [95% CI] | gold2 [95% CI] | proxy | KL nats [95% CI] | "
        "distinct-2 | wall-clock s | samples/output |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in pts:
        tgt = "–" if p["target"] is None else f"{p['target']:+.2f}"
        lines.append(
            f"| {p['method']} | {p['setting']} | {p['checkpoint']} | {p['decode']} | {tgt} | {p['seeds']} | {_ci(p, 'gold')} | "
            f"{_ci(p, 'gold2')} | {p.get('proxy', float('nan')):+.2f} | {_ci(p, 'kl', '{:.2f}')} | {p['distinct2']:.3f} | "
            f"{p['wall_clock_s']:.0f} | {p['samples_per_output']} |"
        )
    return "\n".join(lines)


def controllability_table(rows: list[dict], ceilings: dict) -> str:
    if not rows:
        return "_no conditional results_"
    lines = [
        "| method | setting | checkpoint | decode | seeds | Spearman gold [95% CI] | Spearman gold2 | MAE gold | gold means per target "
        "(low → high) | strictly increasing |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        means = ", ".join(f"{m:+.2f}" for m in r["means_gold"])
        lines.append(
            f"| {r['method']} | {r['setting']} | {r['checkpoint']} | {r['decode']} | {r['seeds']} | {_ci(r, 'spearman_gold', '{:+.3f}')} | "
            f"{r.get('spearman_gold2', float('nan')):+.3f} | {r['mae_gold']:.2f} | {means} | {r['monotone_seeds']}/{r['seeds']} seeds |"
        )
    for method, c in ceilings.items():
        means = ", ".join(f"{m:+.2f}" for m in c.get("means_gold", []))
        lines.append(
            f"| ceiling of {method}: {c['source']} ({c['n_texts']} texts) | – | – | – | – | {c['spearman_gold']:+.3f} | "
            f"{c.get('spearman_gold2', float('nan')):+.3f} | {c['mae_gold']:.2f} | {means} | {'yes' if c['monotone_gold'] else 'no'} |"
        )
    return "\n".join(lines)


def write_report(
    out: str | Path, rows: list[dict], *, ceilings: dict, protocol: dict, command: str = ""
) -> dict[str, Path]:
    """Write every report file into ``out``; return the paths."""
    out = Path(out)
    samples = load_samples(out, rows)
    summ = summary(rows, samples, ceilings=ceilings, protocol=protocol)
    paths = {
        name: out / name for name in ("summary.json", "results.csv", "table.md", "frontier.png", "reliability.png")
    }
    write_json(paths["summary.json"], summ)
    write_table(pd.DataFrame([{k: v for k, v in r.items() if k != "targets"} for r in rows]), paths["results.csv"])
    md = [
        f"Command: `{command}`" if command else "",
        "",
        f"Protocol: {protocol.get('n_eval_prompts')} held-out prompts × {protocol.get('eval_n')} samples, "
        f"seeds {protocol.get('seeds')}, {protocol.get('max_new_tokens')} new tokens; {protocol.get('intervals')}.",
        "",
        "### Every point on the reward–KL plane",
        "",
        points_table(summ["points"]),
        "",
        "### Controllability (neutral prompts)",
        "",
        controllability_table(summ["controllability"], ceilings),
        "",
        "### The conditional frontier against the trained baselines at equal KL",
        "",
        frontier.margins_tables(summ["frontier_margins"]),
        "",
        "### What each conditional policy cost against the baselines reaching its gold (per seed)",
        "",
        frontier.costs_table(summ["costs"]),
        "",
        "![reward vs KL](frontier.png)",
        "",
        "![requested vs achieved](reliability.png)",
        "",
    ]
    write_text(paths["table.md"], "\n".join(md))
    frontier_plot(summ["points"], paths["frontier.png"])
    reliability_plot(final_checkpoints(summ["controllability"]), ceilings, paths["reliability.png"])
    return paths
