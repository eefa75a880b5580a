"""Train a scorer from human ratings.

    condtune scorer train --config scorer
    condtune scorer train ratings=my_ratings.jsonl text_col=text score_col=score rater_col=user normalize=rater
    condtune scorer train ratings=prefs.jsonl objective=bradley_terry

``ratings=vader`` uses the embedded VADER ICWSM-2014 human ratings (individual ratings per text).
Writes ``out/`` (a loadable scorer) with ``out/metrics.json`` (held-out Pearson/Spearman/MAE/
pairwise accuracy beside the human split-half ceiling).
"""

from __future__ import annotations

import json
import logging
import sys

from condtune import config as C
from condtune.io import write_json
from condtune.outputs import claim_output, size_of
from condtune.scorer import SCORER_FILES
from condtune.scorer_training import ScorerTrainConfig, train_scorer

log = logging.getLogger("condtune.scorer_train")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(ScorerTrainConfig, argv)
    claim_output(
        cfg,
        "output_dir",
        job="scorer train",
        argv=argv,
        what="a scorer",
        writes=SCORER_FILES,
        overwrite=cfg.overwrite,
        need_bytes=size_of(cfg.backbone),  # the scorer is its backbone plus a small head
    )
    scorer, metrics = train_scorer(cfg)
    scorer.meta.trained_on = cfg.ratings
    scorer.save(cfg.output_dir, overwrite=cfg.overwrite)
    write_json(f"{cfg.output_dir}/metrics.json", {"metrics": metrics, "config": C.to_dict(cfg)})
    print(f"\nheld-out metrics ({cfg.objective}, normalize={cfg.normalize}):")
    print(json.dumps(metrics, indent=2))
    print(f"scorer saved to {cfg.output_dir}  (load with condtune.scorer.Scorer.load({cfg.output_dir!r}))")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
