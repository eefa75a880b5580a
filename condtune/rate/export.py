"""Export a rating store as the files ``condtune scorer train`` reads, plus a ranking.

``out_dir/``
  ``pointwise.jsonl``  one row per individual score: ``item_id, prompt, completion, score, rater``
  ``pairwise.jsonl``   one row per decided A/B judgement: ``prompt, chosen, rejected, rater``
  ``ranking.json``     Bradley-Terry (or Elo) ranking of completions, and of models when the task mixes them
  ``card.json``        where it came from, counts, and the scorer-train commands for these files

Skips are never exported; ties are counted, kept out of ``pairwise.jsonl``, and enter the
ranking as half a win each. Empty completions are dropped (a scorer cannot read them) and counted.
Every file is written atomically.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Literal, NamedTuple

from condtune.io import write_json, write_jsonl
from condtune.rate.elo import Comparison, rank
from condtune.rate.store import Store

RESULT = {"left": 1.0, "right": 0.0, "tie": 0.5}

EXPORTED = ("pointwise.jsonl", "pairwise.jsonl", "ranking.json", "card.json")
"""the files an export writes (a folder holding one of them is a previous export)"""


class ExportResult(NamedTuple):
    pointwise: Path
    pairwise: Path
    ranking: Path
    card: Path
    counts: dict


def pointwise_rows(scores: list[dict]) -> tuple[list[dict], int]:
    """(rows, empty completions dropped); skips (score None) are left out."""
    rows = [
        {
            "item_id": s["item_id"],
            "prompt": s["prompt"],
            "completion": s["completion"],
            "score": float(s["score"]),
            "rater": s["rater"],
        }
        for s in scores
        if s["score"] is not None and s["completion"].strip()
    ]
    dropped = sum(1 for s in scores if s["score"] is not None and not s["completion"].strip())
    return rows, dropped


def pairwise_rows(comparisons: list[dict]) -> list[dict]:
    """Decided judgements only (no ties, no skips, no empty side)."""
    rows = []
    for c in comparisons:
        if c["choice"] not in ("left", "right"):
            continue
        win, lose = ("left", "right") if c["choice"] == "left" else ("right", "left")
        chosen, rejected = c[f"{win}_completion"], c[f"{lose}_completion"]
        if chosen.strip() and rejected.strip() and chosen != rejected:
            rows.append({"prompt": c["prompt"], "chosen": chosen, "rejected": rejected, "rater": c["rater"]})
    return rows


def outcomes(comparisons: list[dict], by: Literal["item", "model"]) -> list[Comparison]:
    """Ranking inputs: per completion, or per model (only judgements between two models)."""
    key = "id" if by == "item" else "model"
    out = []
    for c in comparisons:
        if c["choice"] == "skip":
            continue
        a, b = c[f"left_{key}"], c[f"right_{key}"]
        if a != b:
            out.append(Comparison(a, b, RESULT[c["choice"]]))
    return out


def _mean_scores(scores: list[dict], key: str) -> dict[str, tuple[float, int]]:
    acc: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if s["score"] is not None:
            acc[s[key]].append(float(s["score"]))
    return {k: (sum(v) / len(v), len(v)) for k, v in acc.items()}


def ranking(store: Store, method: Literal["bradley_terry", "elo"] = "bradley_terry") -> dict:
    """The ranking document: completions (and models, when the task mixes models)."""
    comps, scores = store.comparison_rows(), store.score_rows()
    items = {it.item_id: it for it in store.items()}
    item_means, model_means = _mean_scores(scores, "item_id"), _mean_scores(scores, "model")
    doc = {
        "method": method,
        "rating_scale": "Elo points: 1000 = average, +400 = 10:1 odds of winning",
        "judgements": sum(c["choice"] != "skip" for c in comps),
        "ties": sum(c["choice"] == "tie" for c in comps),
        "skips": sum(c["choice"] == "skip" for c in comps),
        "completions": [
            {
                "item_id": r.id,
                "model": items[r.id].model,
                "rating": round(r.rating, 2),
                "wins": r.wins,
                "losses": r.losses,
                "ties": r.ties,
                "mean_score": item_means.get(r.id, (None, 0))[0],
                "n_scores": item_means.get(r.id, (None, 0))[1],
                "prompt": items[r.id].prompt,
                "completion": items[r.id].completion,
            }
            for r in rank(outcomes(comps, "item"), method)
        ],
    }
    models = sorted({it.model for it in items.values()})
    if len(models) > 1:
        ranked = {r.id: r for r in rank(outcomes(comps, "model"), method)}
        rows = []
        for m in models:
            r = ranked.get(m)
            rows.append(
                {
                    "model": m,
                    "rating": round(r.rating, 2) if r else None,
                    "wins": r.wins if r else 0,
                    "losses": r.losses if r else 0,
                    "ties": r.ties if r else 0,
                    "mean_score": model_means.get(m, (None, 0))[0],
                    "n_scores": model_means.get(m, (None, 0))[1],
                }
            )
        doc["models"] = sorted(rows, key=lambda x: (x["rating"] is None, -(x["rating"] or 0), x["model"]))
    return doc


def scorer_commands(out_dir: Path, scale: tuple[int, int]) -> dict[str, str]:
    """The ``condtune scorer train`` command lines that read these files."""
    return {
        "pointwise": f"condtune scorer train ratings={out_dir / 'pointwise.jsonl'} columns.prompt_col=prompt "
        f"columns.completion_col=completion columns.item_col=item_id columns.rater_col=rater "
        f"columns.score_min={scale[0]} columns.score_max={scale[1]}",
        "pairwise": f"condtune scorer train ratings={out_dir / 'pairwise.jsonl'} objective=bradley_terry",
    }


def export(
    store: Store, out_dir: str | Path, method: Literal["bradley_terry", "elo"] = "bradley_terry"
) -> ExportResult:
    """Write pointwise.jsonl, pairwise.jsonl, ranking.json and card.json into ``out_dir``."""
    out_dir = Path(out_dir)
    scores, comps = store.score_rows(), store.comparison_rows()
    points, dropped = pointwise_rows(scores)
    pairs = pairwise_rows(comps)
    doc = ranking(store, method)
    counts = {
        "scores": len(points),
        "score_skips": sum(s["score"] is None for s in scores),
        "empty_dropped": dropped,
        "pairwise": len(pairs),
        "ab_ties": doc["ties"],
        "ab_skips": doc["skips"],
        "ab_unusable": sum(c["choice"] in ("left", "right") for c in comps) - len(pairs),
        "raters": len(store.raters()),
        "items": len(store.items()),
        "ranked_completions": len(doc["completions"]),
    }
    p_point = write_jsonl(out_dir / "pointwise.jsonl", points)
    p_pair = write_jsonl(out_dir / "pairwise.jsonl", pairs)
    p_rank = write_json(out_dir / "ranking.json", doc)
    card = {
        "db": str(store.path),
        "task": store.meta("task"),
        "scale": {"min": store.scale[0], "max": store.scale[1]},
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ranking_method": method,
        "counts": counts,
        "files": {"pointwise": p_point.name, "pairwise": p_pair.name, "ranking": p_rank.name},
        "scorer_train": scorer_commands(out_dir, store.scale),
    }
    p_card = write_json(out_dir / "card.json", card)
    return ExportResult(pointwise=p_point, pairwise=p_pair, ranking=p_rank, card=p_card, counts=counts)
