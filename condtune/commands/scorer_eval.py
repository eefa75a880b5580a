"""Evaluate a saved scorer against human ratings.

    condtune scorer eval scorer=runs/scorer ratings=vader
    condtune scorer eval scorer=runs/scorer ratings=held_out.jsonl columns.rater_col=rater

Pointwise files give Pearson/Spearman/MAE/pairwise accuracy against each item's mean rating,
beside the human split-half ceiling; pairwise files (objective=bradley_terry) give pairwise accuracy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Literal

from condtune import config as C
from condtune.errors import DataError
from condtune.io import write_json
from condtune.outputs import claim_output
from condtune.ratings import PointwiseSpec, check_scores_vary, load_pairwise, load_pointwise, to_items
from condtune.scorer import Scorer, evaluate_items, evaluate_pairs
from condtune.vader import load_vader


@dataclass
class ScorerEvalConfig:
    scorer: str = "runs/scorer"
    """scorer directory"""
    ratings: str = "vader"
    """'vader' or a ratings file"""
    objective: Literal["regression", "bradley_terry"] = "regression"
    """pointwise file (regression) or pairwise file (bradley_terry)"""
    columns: PointwiseSpec = field(default_factory=PointwiseSpec)
    """pointwise column names"""
    domains: list[str] = field(default_factory=list)
    """vader only: subset of domains"""
    output_path: str | None = None
    """optional JSON file for the metrics"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(ScorerEvalConfig, argv)
    if cfg.output_path:
        claim_output(cfg, "output_path", job="scorer eval", argv=argv, folder=False, what="a JSON file")
    scorer = Scorer.load(cfg.scorer)
    if cfg.objective == "bradley_terry":
        metrics = evaluate_pairs(scorer, load_pairwise(cfg.ratings))
    else:
        ratings = (
            load_vader(domains=cfg.domains or None)
            if cfg.ratings == "vader"
            else load_pointwise(cfg.ratings, cfg.columns)
        )
        items = to_items(ratings)
        check_scores_vary(items["mean"], cfg.ratings, cfg.columns.score_col)  # else every metric is NaN
        if len(items) < 2:  # one item has no correlation, MAE of one number: metrics that mean nothing
            raise DataError(cfg.ratings, f"{len(items)} rated items; evaluating a scorer needs at least 2")
        metrics = evaluate_items(scorer, items)
    if cfg.output_path:
        write_json(cfg.output_path, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
