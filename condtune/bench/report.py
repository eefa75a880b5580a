"""Benchmark report: results.jsonl -> results.csv, targets.csv, table.md, frontier.png
(reward against KL, one point per checkpoint and method, mean ± sd over seeds) and
reliability.png (requested against achieved score of the conditioned policy, beside the
human-written texts of the same bins)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from condtune.bench import metrics as BM
from condtune.io import write_text

AGG = [BM.GOLD, BM.PROXY, BM.KL, BM.DISTINCT_2, BM.WALL, BM.TOKENS, BM.CALLS]
COND = ("conditional", "conditional_self")  # methods evaluated per requested target (the frontier shows their top bin)
COLORS = {"conditional": "tab:green", "conditional_self": "tab:olive", "ppo": "tab:red", "rloo": "tab:orange", "dpo": "tab:blue", "best_of_n": "tab:purple"}


def flat_rows(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{k: v for k, v in r.items() if k != "targets"} for r in rows])


def target_rows(rows: list[dict]) -> pd.DataFrame:
    out = [{"method": r["method"], "seed": r["seed"], "checkpoint": r["checkpoint"], "step": r["step"], **t}
           for r in rows for t in r.get("targets", [])]
    return pd.DataFrame(out)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (method, checkpoint), ordered by method then step."""
    g = df.groupby(["method", "checkpoint", "step"], sort=False)
    out = g[AGG].mean().add_suffix("_mean").join(g[AGG].std(ddof=1).add_suffix("_sd")).join(g.size().rename("seeds")).reset_index()
    return out.sort_values(["method", "step"]).reset_index(drop=True)


def _pm(m, s, fmt="{:+.3f}") -> str:
    if m is None or not np.isfinite(m):
        return "–"
    return fmt.format(m) + ("" if s is None or not np.isfinite(s) else " ± " + fmt.format(s).lstrip("+"))


def main_table(agg: pd.DataFrame) -> str:
    lines = ["| method | checkpoint | seeds | gold reward | proxy reward | KL(π‖π_ref) nats | distinct-2 | wall-clock s | gen. tokens | scorer calls |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in agg.iterrows():
        lines.append(f"| {r['method']} | {r['checkpoint']} | {r['seeds']} | {_pm(r[BM.GOLD + '_mean'], r[BM.GOLD + '_sd'])} | "
                     f"{_pm(r[BM.PROXY + '_mean'], r[BM.PROXY + '_sd'])} | {_pm(r[BM.KL + '_mean'], r[BM.KL + '_sd'], '{:.2f}')} | "
                     f"{r[BM.DISTINCT_2 + '_mean']:.3f} | {r[BM.WALL + '_mean']:.0f} | {r[BM.TOKENS + '_mean']:.0f} | {r[BM.CALLS + '_mean']:.0f} |")
    return "\n".join(lines)


def _ceiling_label(c: dict) -> str:
    return c.get("source", "held-out human texts") + ", same bins"


def controllability_table(tg: pd.DataFrame, flat: pd.DataFrame, ceilings: dict[str, dict] | None) -> str:
    """Per conditional method, checkpoint and requested target: achieved gold/proxy mean ± sd
    (mean of seed means ± sd of seed means), beside its data's texts of the same bin."""
    if tg.empty:
        return "_no conditional results_"
    ceilings = ceilings or {}
    lines = ["| method | checkpoint | requested | achieved gold (mean of seeds ± sd) | within-seed sd | achieved proxy | its data's texts of the bin: gold mean ± sd (n) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (method, ck, step), grp in tg.groupby(["method", "checkpoint", "step"], sort=False):
        human = {round(p["requested"], 6): p for p in ceilings.get(method, {}).get("per_bin", [])}
        for req, g in grp.groupby("requested"):
            h = human.get(round(req, 6))
            htxt = f"{h['gold_mean']:+.3f} ± {h['gold_sd']:.3f} ({h['n']})" if h else "–"
            sd = g[BM.GOLD].std(ddof=1) if len(g) > 1 else np.nan
            lines.append(f"| {method} | {ck} | {req:+.2f} | {_pm(g[BM.GOLD].mean(), sd)} | {g[BM.GOLD + '_sd'].mean():.3f} | {g[BM.PROXY].mean():+.3f} | {htxt} |")
    lines += ["", "| method | checkpoint | seeds | Spearman(requested, achieved gold), per sample | MAE gold | Spearman (proxy) | gold means strictly increasing |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for method in [m for m in COND if m in set(flat["method"])]:
        for ck, g in flat[flat["method"] == method].groupby("checkpoint", sort=False):
            lines.append(f"| {method} | {ck} | {len(g)} | {_pm(g[BM.COND_SPEARMAN_GOLD].mean(), g[BM.COND_SPEARMAN_GOLD].std(ddof=1))} | "
                         f"{g[BM.COND_MAE_GOLD].mean():.3f} | {g[BM.COND_SPEARMAN_PROXY].mean():+.3f} | {int(g[BM.COND_MONOTONE].sum())}/{len(g)} seeds |")
        c = ceilings.get(method)
        if c:
            lines.append(f"| {method}: its data ({_ceiling_label(c)}) | – | – | {c['spearman_gold']:+.3f} | {c['mae_gold']:.3f} | – | "
                         f"{'yes' if c['monotone_gold'] else 'no'} |")
    return "\n".join(lines)


def headline(agg: pd.DataFrame, flat: pd.DataFrame, ceilings: dict[str, dict] | None) -> str:
    """The reported targets per conditional method: cost and reward relative to PPO's best
    checkpoint; monotonicity; Spearman beside its data's ceiling."""
    out, ceilings = [], ceilings or {}
    ppo = agg[agg["method"] == "ppo"]
    base = agg[(agg["method"] == "best_of_n") & (agg["step"] == 1)]
    g0 = float(base[BM.GOLD + "_mean"].iloc[0]) if len(base) else None
    methods = [m for m in COND if m in set(agg["method"])]
    if len(ppo) and methods:
        best = ppo.loc[ppo[BM.GOLD + "_mean"].idxmax()]
        G, W = best[BM.GOLD + "_mean"], best[BM.WALL + "_mean"]
        out.append(f"PPO's best checkpoint ({best['checkpoint']}): gold {G:+.3f} after {W:.0f} s." + (f" Base policy (best-of-1): gold {g0:+.3f}." if g0 is not None else ""))
        if g0 is not None and G <= g0:
            out.append("PPO did not raise the gold reward above the base policy's, so fractions of its gain are undefined (–).")
        out += ["", "| conditional method | checkpoint | wall-clock / PPO's | gold (top bin) / PPO's | gold gain over base / PPO's gain |", "|---|---|---:|---:|---:|"]
        for _, r in agg[agg["method"].isin(methods)].iterrows():
            g, w = r[BM.GOLD + "_mean"], r[BM.WALL + "_mean"]
            gain = (g - g0) / (G - g0) if g0 is not None and G - g0 > 1e-9 else float("nan")
            out.append(f"| {r['method']} | {r['checkpoint']} | {w / W:.2f} | {g / G:.2f} | {'–' if not np.isfinite(gain) else f'{gain:.2f}'} |")
    for method in methods:
        c = flat[flat["method"] == method]
        last = c[c["step"] == c["step"].max()]
        k = len(last["targets"].iloc[0]) if "targets" in last and isinstance(last["targets"].iloc[0], list) else None
        ceil = ceilings.get(method)
        out.append("")
        out.append(f"Final {method} checkpoint: achieved gold means strictly increasing over {k or '?'} requested targets in "
                   f"{int(last[BM.COND_MONOTONE].sum())}/{len(last)} seeds; per-sample Spearman(requested, achieved gold) "
                   f"{last[BM.COND_SPEARMAN_GOLD].mean():+.3f}" + (f" vs {ceil['spearman_gold']:+.3f} on its data ({_ceiling_label(ceil)})." if ceil else "."))
    return "\n".join(out)


def frontier_plot(agg: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, key, title in ((axes[0], BM.GOLD, "gold rater"), (axes[1], BM.PROXY, "proxy scorer (trained against)")):
        for method, g in agg.groupby("method", sort=False):
            x, y = g[BM.KL + "_mean"], g[key + "_mean"]
            ax.errorbar(x, y, xerr=g[BM.KL + "_sd"].fillna(0), yerr=g[key + "_sd"].fillna(0), marker="o", capsize=3,
                        color=COLORS.get(method), label=method + (" (top bin)" if method in COND else ""))
            for xi, yi, ck in zip(x, y, g["checkpoint"]):
                ax.annotate(ck.replace("step_", "").replace("n_", "n="), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("KL(π‖π_ref), nats per sample (best-of-n: analytic bound)")
        ax.set_ylabel(f"mean reward ({title})")
        ax.set_title(f"reward vs KL: {title}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_plot(tg: pd.DataFrame, ceilings: dict[str, dict] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    if not tg.empty:
        for method, mg in tg.groupby("method", sort=False):
            steps = sorted(mg["step"].unique())
            for i, step in enumerate(steps):
                g = mg[mg["step"] == step].groupby("requested")
                m, s = g[BM.GOLD].mean(), g[BM.GOLD].std(ddof=1).fillna(0)
                alpha = 0.35 + 0.65 * (i + 1) / len(steps)
                ax.errorbar(m.index, m.values, yerr=s.values, marker="o", capsize=3, color=COLORS.get(method), alpha=alpha,
                            label=f"{method} step {step} (gold)")
        lo, hi = float(tg["requested"].min()), float(tg["requested"].max())
        ax.plot([lo, hi], [lo, hi], ":", color="black", label="achieved = requested")
    for method, c in (ceilings or {}).items():
        pb = c.get("per_bin") or []
        if pb:
            ax.errorbar([p["requested"] for p in pb], [p["gold_mean"] for p in pb], yerr=[p["gold_sd"] / np.sqrt(p["n"]) for p in pb],
                        marker="^", linestyle="--", color=COLORS.get(method), capsize=3, label=f"{method}: its data's texts of the bin (gold)")
    ax.set_xlabel("requested score (bin median, raters' scale)")
    ax.set_ylabel("achieved gold score")
    ax.set_title("requested vs achieved")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: str | Path, rows: list[dict], ceilings: dict[str, dict] | None = None, command: str = "") -> dict[str, Path]:
    """Write every report file into ``out``; ``ceilings`` maps a conditional method to its data's ceiling. Return the paths."""
    from condtune.data import write_table

    out = Path(out)
    flat, tg = flat_rows(rows), target_rows(rows)
    full = pd.DataFrame(rows)
    agg = aggregate(flat)
    paths = {name: out / name for name in ("results.csv", "targets.csv", "table.md", "frontier.png", "reliability.png")}
    write_table(flat, paths["results.csv"])
    write_table(tg if not tg.empty else pd.DataFrame(columns=["method", "seed", "checkpoint", "requested"]), paths["targets.csv"])
    md = [f"Command: `{command}`" if command else "", "", "### Every method and checkpoint (mean ± sd over seeds)", "", main_table(agg), "",
          "### Controllability of the conditioned policies", "", controllability_table(tg, full, ceilings), "",
          "### Against PPO", "", headline(agg, full, ceilings), "", "![reward vs KL](frontier.png)", "", "![requested vs achieved](reliability.png)", ""]
    write_text(paths["table.md"], "\n".join(md))
    frontier_plot(agg, paths["frontier.png"])
    reliability_plot(tg, ceilings, paths["reliability.png"])
    return paths
