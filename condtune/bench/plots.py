"""The benchmark's two plots: reward against exact KL (every method; a conditional run at its top
target across guidance scales) and requested against achieved score (every conditional decode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from condtune.bench.settings import CONDITIONAL_METHODS, UNTAGGED

COLORS = {
    "conditional": "tab:green",
    "conditional_self": "tab:olive",
    "conditional_online": "tab:cyan",
    "ppo": "tab:red",
    "rloo": "tab:orange",
    "dpo": "tab:blue",
    "best_of_n": "tab:purple",
}


def final_checkpoints(pts: list[dict]) -> list[dict]:
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
    kind = "anchored" if p.get("anchored") else "plain / CFG"
    return t + kind + (" vs mirror" if p.get("contrast", UNTAGGED) != UNTAGGED else "")


def frontier_curves(pts: list[dict]) -> dict[str, list[dict]]:
    """The curves of the reward-KL plot, by legend label, each sorted by KL: a baseline's run across
    its checkpoints (best-of-n across n); a conditional run's final checkpoint at its top requested
    target (the one a user asking for the best text gets) across the guidance scales of one decode
    family. The other targets are controllability, not reward: they are in the reliability plot."""
    curves: dict[str, list[dict]] = {}
    top: dict[tuple, float] = {}
    cond = [p for p in final_checkpoints(pts) if p["method"] in CONDITIONAL_METHODS and p.get("target") is not None]
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
    settings: dict[str, list[str]] = {}  # each method's settings in order of appearance
    out = {}
    for label, ps in curves.items():
        method, setting = ps[0]["method"], ps[0]["setting"]
        seen = settings.setdefault(method, [])
        if setting not in seen:
            seen.append(setting)
        i = seen.index(setting)
        if method in SHADES:
            family = decode_family(ps[0])
            shade = FAMILIES.index(family) if family in FAMILIES else 3
            color, marker, lw = SHADES[method][shade], "s", 2.0 if shade == 2 else 1.4
        else:
            color, marker, lw = COLORS.get(method), markers[i % 4], 1.0
        out[label] = {"linestyle": styles[i % 4], "marker": marker, "lw": lw, "color": color}
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
