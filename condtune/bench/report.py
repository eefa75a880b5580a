"""Benchmark report: results.jsonl + samples/ -> summary.json (the fixed schema), results.csv,
table.md, frontier.png (reward against exact KL, 95% intervals on both axes) and
reliability.png (requested against achieved score, beside the data's own ceiling).

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
from condtune.bench.settings import CONDITIONAL_METHODS, UNTAGGED
from condtune.io import write_json, write_text

COLORS = {
    "conditional": "tab:green",
    "conditional_self": "tab:olive",
    "conditional_online": "tab:cyan",
    "ppo": "tab:red",
    "rloo": "tab:orange",
    "dpo": "tab:blue",
    "best_of_n": "tab:purple",
}
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


# ----------------------------------------------------------------------------- plots


def _final(pts: list[dict]) -> list[dict]:
    """The rows of each (method, setting)'s last checkpoint."""
    last = {}
    for p in pts:
        key = (p["method"], p["setting"])
        last[key] = max(last.get(key, 0), p["step"])
    return [p for p in pts if p["step"] == last[(p["method"], p["setting"])]]


def decode_family(p: dict) -> str:
    """What a conditional point's curve varies the guidance scale of: plain sampling and classifier-free
    guidance (g = 1 is plain) are one curve, anchored guidance against the untagged prompt another, against
    the mirrored target's tag a third."""
    t = "" if p.get("temperature", 1.0) == 1.0 else f"T={p['temperature']:g} "
    if not p.get("anchored"):
        return t + "plain / CFG" + (" vs mirror" if p.get("contrast", UNTAGGED) != UNTAGGED else "")
    return t + "anchored" + (" vs mirror" if p.get("contrast", UNTAGGED) != UNTAGGED else "")


def frontier_curves(pts: list[dict]) -> dict[str, list[dict]]:
    """The curves of the reward-KL plot, by legend label, each sorted by KL: a baseline's run across
    its checkpoints (best-of-n across n); a conditional run's final checkpoint at its top requested
    target (the one a user asking for the best text gets) across the guidance scales of one decode
    family. The other targets are controllability, not reward: they are in the reliability plot."""
    curves: dict[str, list[dict]] = {}
    top: dict[tuple, float] = {}
    cond = [p for p in _final(pts) if p["method"] in CONDITIONAL_METHODS and p.get("target") is not None]
    for p in cond:
        k = (p["method"], p["setting"], p["checkpoint"])
        top[k] = max(top.get(k, -np.inf), p["target"])
    top_pts = [p for p in cond if p["target"] == top[(p["method"], p["setting"], p["checkpoint"])]]
    for p in [p for p in pts if p["method"] not in CONDITIONAL_METHODS] + top_pts:
        name = p["method"] if p["setting"] == "default" else f"{p['method']} {p['setting']}"
        if p["method"] in CONDITIONAL_METHODS:
            name = f"{name}: {decode_family(p)}"
        curves.setdefault(name, []).append(p)
    return {k: sorted(v, key=lambda p: p["kl"]) for k, v in curves.items()}


# a conditional method's shades, by decode family: plain/CFG, anchored, anchored vs mirror, other
SHADES = {
    "conditional": ["#74c476", "#17becf", "#00441b", "#9467bd"],
    "conditional_self": ["#bcbd22", "#e6a700", "#5c5c00", "#8c564b"],
    "conditional_online": ["#6baed6", "#9ecae1", "#08306b", "#7f7f7f"],
}
FAMILIES = ("plain / CFG", "anchored", "anchored vs mirror")


def _curve_styles(curves: dict[str, list[dict]]) -> dict[str, dict]:
    """Colour, line style and marker of each curve: a baseline's settings share its colour and differ
    in line style and marker; a conditional curve's shade says its decode family (the same family the
    same shade in every conditional method), its line style its setting."""
    styles, markers = ["-", ":", "-.", (0, (5, 1))], ["o", "^", "v", "D"]
    settings: dict[str, list[str]] = {}
    out = {}
    for label, ps in curves.items():
        method, setting = ps[0]["method"], ps[0]["setting"]
        seen = settings.setdefault(method, [])
        if method not in SHADES or setting not in seen:
            seen.append(setting)
        i = seen.index(setting) if method in SHADES else len(seen) - 1
        if method in SHADES:
            family = decode_family(ps[0])
            shade = FAMILIES.index(family) if family in FAMILIES else 3
            out[label] = {"linestyle": styles[i % 4], "marker": "s", "lw": 2.0 if shade == 2 else 1.4,
                          "color": SHADES[method][shade]}  # fmt: skip
        else:
            out[label] = {"linestyle": styles[i % 4], "marker": markers[i % 4], "lw": 1.0, "color": COLORS.get(method)}
    return out


def frontier_plot(pts: list[dict], path: Path, *, zoom_kl: float = 12.0) -> None:
    """Reward against exact KL, one panel per rater; the second row repeats the first up to
    ``zoom_kl`` nats, the window the frontier margins are judged in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raters = [r for r in ("gold", "gold2", "proxy") if any(r in p for p in pts)]
    fig, axes = plt.subplots(2, len(raters), figsize=(5.6 * len(raters), 8.8), squeeze=False)
    curves = frontier_curves(pts)
    style = _curve_styles(curves)
    for row, zoom in enumerate((False, True)):
        for ax, rater in zip(axes[row], raters):
            top = -np.inf
            for label, ps in curves.items():
                if zoom:
                    ps = [p for p in ps if p["kl"] <= zoom_kl]
                    if not ps:
                        continue
                x, y = np.array([p["kl"] for p in ps]), np.array([p.get(rater, np.nan) for p in ps])
                xe = np.abs(np.array([p["kl_ci"] for p in ps]).T - x)
                ye = np.abs(np.array([p.get(f"{rater}_ci", [np.nan, np.nan]) for p in ps]).T - y)
                top = max(top, np.nanmax(y + ye[1]))
                st = style[label]
                ax.errorbar(
                    x, y, xerr=xe, yerr=ye, marker=st["marker"], ms=4, capsize=2, lw=st["lw"],
                    color=st["color"], label=label, alpha=0.9, linestyle=st["linestyle"],
                )  # fmt: skip
                if ps[0]["method"] in CONDITIONAL_METHODS and len(ps) > 1:  # name each point's guidance scale
                    for p, xi, yi in zip(ps, x, y):
                        ax.annotate(
                            f"g={p.get('guidance', 1.0):g}", (xi, yi), xytext=(3, -9),
                            textcoords="offset points", fontsize=6, color=st["color"],
                        )  # fmt: skip
            if zoom:
                ax.set_xlim(-0.3, zoom_kl)
                if np.isfinite(top):
                    ax.set_ylim(top=top + 0.1)
            ax.set_xlabel("exact KL(sampled ‖ π_ref), nats per sample (best-of-n: analytic bound)")
            ax.set_ylabel(f"mean {rater} score")
            title = f"reward vs KL: {rater}" + (" (trained against)" if rater == "proxy" else "")
            ax.set_title(title + (f", up to {zoom_kl:g} nats" if zoom else ""))
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()  # below the panels, never over the points
    ncol = 3 if max(map(len, labels), default=0) < 60 else 2
    rows = -(-len(labels) // ncol)
    fig.set_size_inches(fig.get_size_inches()[0], fig.get_size_inches()[1] + 0.2 * rows + 0.3)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(
        "conditional: the top requested target at its final checkpoint, each point a guidance scale (annotated);"
        " bars: 95% intervals over prompts, pooled over seeds",
        fontsize=9,
        y=0.995,
    )
    fig.tight_layout(rect=(0, min(0.6, (0.2 * rows + 0.2) / fig.get_size_inches()[1]), 1, 0.985))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_plot(ctrl: list[dict], ceilings: dict, path: Path) -> None:
    """Achieved gold against requested score, one line per conditional decode, each its own colour
    (a method's decodes in shades of its colour, the darker the higher its Spearman), beside the ceilings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps

    cmaps = {"conditional": "Greens", "conditional_self": "YlOrBr", "conditional_online": "Blues"}
    fig, ax = plt.subplots(figsize=(7.6, 6.4))
    by_method: dict[str, list[dict]] = {}
    for r in ctrl:
        by_method.setdefault(r["method"], []).append(r)
    for method, rs in by_method.items():
        rs = sorted(rs, key=lambda r: r["spearman_gold"])  # the darker, the more the tag controls
        cmap = colormaps[cmaps.get(method, "Greys")]
        for i, r in enumerate(rs):
            t, m = np.array(r["targets"]), np.array(r["means_gold"])
            err = np.abs(np.array(r["means_gold_ci"]).T - m)
            ax.errorbar(
                t, m, yerr=err, marker="o" if method == "conditional" else "s", ms=4, capsize=2, lw=1.2,
                color=cmap(0.35 + 0.6 * i / max(1, len(rs) - 1)), alpha=0.95,
                label=f"{method} {r['setting']} {r['decode']}".replace(" default", ""),
            )  # fmt: skip
    for method, c in ceilings.items():
        ax.plot(c["requested"], c["means_gold"], "^--", color=COLORS.get(method), label=f"ceiling: {method}'s data")
    if ctrl:
        lo, hi = min(min(r["targets"]) for r in ctrl), max(max(r["targets"]) for r in ctrl)
        ax.plot([lo, hi], [lo, hi], ":", color="black", label="achieved = requested")
    ax.set_xlabel("requested score (bin median, raters' scale)")
    ax.set_ylabel("achieved gold score (mean, 95% CI)")
    ax.set_title("requested vs achieved, neutral prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    out: str | Path, rows: list[dict], *, ceilings: dict, protocol: dict, command: str = ""
) -> dict[str, Path]:
    """Write every report file into ``out``; return the paths."""
    from condtune.data import write_table

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
    reliability_plot(_final(summ["controllability"]), ceilings, paths["reliability.png"])
    return paths
