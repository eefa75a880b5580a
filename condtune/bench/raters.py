"""The benchmark's raters: the proxy scorer every method optimises, and the gold raters that only
the evaluation sees.

* **proxy**: MiniLM regression on one half (``half_a``) of each training text's individual ratings;
* **gold**: the same recipe on the other half (``half_b``): other people's judgements of the same
  texts, but the same model family as the proxy, so over-optimising MiniLM's quirks cannot show;
* **gold2**: a linear model on word and character n-grams fit on all of each training text's
  ratings (:mod:`condtune.ngram_scorer`): it shares no weights or features with the proxy.

Each is trained once and cached in ``out/scorers/``; its held-out Pearson with the human mean is
in its metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from condtune.bench.settings import BenchConfig
from condtune.bench.task import Task
from condtune.ngram_scorer import NgramScorer, fit_on_items
from condtune.scorer import Scorer
from condtune.scorer_training import ScorerTrainConfig, train_or_load

log = logging.getLogger("condtune.bench")


class Raters(NamedTuple):
    proxy: Scorer
    gold: Scorer
    gold2: NgramScorer | None

    def judged(self) -> dict:
        """Name -> rater for everything the evaluation reports (the proxy included)."""
        return {"proxy": self.proxy, "gold": self.gold, **({"gold2": self.gold2} if self.gold2 is not None else {})}


def minilm_rater(cfg: BenchConfig, task: Task, which: str, *, given: str, out: Path) -> Scorer:
    """The given scorer dir, or one trained on half of each item's ratings (cached in out/scorers/)."""
    path = Path(given) if given else out / "scorers" / which
    if given:
        scorer = Scorer.load(path)
    else:
        split = "half_a" if which == "proxy" else "half_b"
        scfg = ScorerTrainConfig(
            **task.scorer_data(),
            rating_split=split,
            backbone=cfg.scorer.backbone,
            max_train_samples=cfg.scorer.max_train_samples,
            val_fraction=task.val_fraction,
            optim=cfg.scorer.optim,
            output_dir=str(path),
        )
        scorer = train_or_load(scfg, trained_on=f"{task.name}:{split}")
    log.info(
        "%s scorer %s: held-out Pearson %.3f vs human mean",
        which,
        path,
        (scorer.meta.metrics or {}).get("pearson", float("nan")),
    )
    return scorer


def ngram_rater(task: Task, out: Path) -> NgramScorer:
    """gold2: n-gram ridge on every rating of the training texts (cached in out/scorers/gold2)."""
    path = out / "scorers" / "gold2"
    if not NgramScorer.is_saved(path):
        train, held = task.split()
        scorer, metrics = fit_on_items(
            train["completion"].tolist(),
            train["human_mean"].to_numpy(),
            val_texts=held["completion"].tolist(),
            val_targets=held["human_mean"].to_numpy(),
        )
        scorer.meta.trained_on = f"{task.name}:all ratings of the training texts"
        scorer.save(path)
    scorer = NgramScorer.load(path)
    log.info(
        "gold2 (n-gram ridge) %s: held-out Pearson %.3f vs human mean",
        path,
        scorer.meta.metrics.get("pearson", float("nan")),
    )
    return scorer


def build_raters(cfg: BenchConfig, task: Task, out: Path) -> Raters:
    return Raters(
        minilm_rater(cfg, task, "proxy", given=cfg.proxy_scorer, out=out),
        minilm_rater(cfg, task, "gold", given=cfg.gold_scorer, out=out),
        ngram_rater(task, out) if cfg.gold2 else None,
    )


class TaskReward:
    """A rater reading what the task's raters read (:meth:`Task.review_text`); ``score_pairs`` is
    both the methods' reward function and what :func:`condtune.relabel.relabel` calls."""

    def __init__(self, scorer, task: Task):
        self.scorer, self.task, self.meta = scorer, task, getattr(scorer, "meta", None)

    def score_pairs(self, prompts, completions, batch_size: int = 64):
        return self.scorer.score(
            [self.task.review_text(p, c) for p, c in zip(prompts, completions)], batch_size=batch_size
        )

    __call__ = score_pairs
