"""DPO baseline (trl): preference pairs from a file, or built from pointwise ratings.

    condtune dpo --config dpo
    condtune dpo pairs=runs/rating/ratings/pairwise.jsonl model=smollm2-135m output_dir=runs/dpo
    condtune dpo pairs= ratings=runs/rating/ratings/pointwise.jsonl columns.prompt_col=prompt \\
        columns.completion_col=completion dpo.max_train_samples=500 dpo.min_margin=1

Pairs from ratings: two rated completions of the same prompt whose mean ratings differ by at least
``dpo.min_margin``, the higher-rated one chosen (:func:`condtune.baselines.dpo.build_pairs`). The
policy is snapshotted at each of ``dpo.checkpoints`` (``output_dir/step_N``, the last is the final policy);
rerunning the same command resumes from the latest checkpoint in ``output_dir/checkpoints``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from condtune import config as C
from condtune.artifacts import check_model_ref
from condtune.baselines.dpo import DPOSettings, build_pairs, train_dpo
from condtune.batches import file_digest
from condtune.checkpointing import (
    CHECKPOINTS,
    RUN_RECORD,
    Checkpoint,
    claim_command_run,
    latest_checkpoint,
    weights_digest,
)
from condtune.errors import DataError
from condtune.io import read_json, write_json
from condtune.modeling import model_dir
from condtune.outputs import claim_output
from condtune.ratings import PointwiseSpec, load_pairwise, load_pointwise, to_items
from condtune.tracking import check_report_to

log = logging.getLogger("condtune.dpo")


@dataclass
class DPOJobConfig:
    model: str = "smollm2-135m"
    """base policy (embedded-default name, HF id or local dir); also the frozen reference"""
    pairs: str = ""
    """preference pairs: prompt, chosen, rejected (e.g. pairwise.jsonl from `condtune rate --export`)"""
    ratings: str = ""
    """or pointwise ratings, turned into pairs of completions of the same prompt (give pairs or ratings)"""
    columns: PointwiseSpec = field(default_factory=PointwiseSpec)
    """the ratings file's columns and score range"""
    dpo: DPOSettings = field(default_factory=DPOSettings)
    """DPO settings (max_train_samples and min_margin apply to ratings only; a pairs file is used whole)"""
    seed: int = 0
    """seed of the pairing and of training"""
    output_dir: str = "runs/dpo"
    """output folder: step_N policies, summary.json, the trainer's checkpoints (rerunning resumes there)"""
    overwrite: bool = False
    """start afresh in an output_dir that holds another run (other inputs or settings), or files of another kind"""
    report_to: str = "none"
    """log training metrics: none | tensorboard (under output_dir/checkpoints/runs) | wandb"""

    def __post_init__(self):
        check_report_to(self.report_to)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(DPOJobConfig, argv)
    if bool(cfg.pairs) == bool(cfg.ratings):
        raise C.ConfigError("give pairs=<prompt, chosen, rejected file> or ratings=<pointwise file> (one of them)")
    out = claim_output(
        cfg,
        "output_dir",
        job="dpo",
        argv=argv,
        what="a dpo run",
        marks=(RUN_RECORD, CHECKPOINTS),
        overwrite=cfg.overwrite,
    )
    pairs = load_pairs(cfg)
    base = claim_run(cfg, out)
    ckpts = train(cfg, out, pairs, base)
    summary = save(out, ckpts, pairs)
    report(out, summary)
    return 0


def load_pairs(cfg: DPOJobConfig) -> pd.DataFrame:
    """The preference pairs: the pairs file whole, or pairs built from the ratings."""
    if cfg.pairs:
        return load_pairwise(cfg.pairs)
    items = to_items(load_pointwise(cfg.ratings, cfg.columns))
    try:
        return build_pairs(
            items.assign(score=items["mean"]), cfg.dpo.max_train_samples, cfg.dpo.min_margin, seed=cfg.seed
        )
    except ValueError as exc:
        raise DataError(cfg.ratings, str(exc)) from None


def claim_run(cfg: DPOJobConfig, out: Path) -> str:
    """The run claimed for what the inputs hold; the base policy as a directory (trl rebuilds the
    reference from it)."""
    model_path = check_model_ref(cfg.model)  # before the run is claimed: a missing or damaged model names itself
    contents = {  # what the inputs hold, not only their names (known by name only: a run recorded before)
        "pairs_digest": file_digest(cfg.pairs),
        "ratings_digest": file_digest(cfg.ratings),
        "model_digest": weights_digest(model_path),
    }
    claim_command_run(
        out, cfg, "dpo", contents, overwrite=cfg.overwrite, outputs=(CHECKPOINTS, "snapshots.json", "summary.json")
    )
    return model_dir(cfg.model, out / "base")


def train(cfg: DPOJobConfig, out: Path, pairs: pd.DataFrame, base: str) -> list[Checkpoint]:
    """trl's DPOTrainer, snapshots at dpo.checkpoints."""
    steps = max(cfg.dpo.checkpoints)
    log.info(
        "dpo: %d pairs, base=%s, beta=%g, %d steps of %d pairs",
        len(pairs),
        cfg.model,
        cfg.dpo.beta,
        steps,
        cfg.dpo.per_device_train_batch_size,
    )
    return train_dpo(base, pairs, cfg.dpo, out_dir=out, seed=cfg.seed, report_to=cfg.report_to)


def save(out: Path, ckpts: list[Checkpoint], pairs: pd.DataFrame) -> dict:
    """The run's summary (summary.json) beside the policies."""
    final = max(ckpts, key=lambda c: c.step)
    history = read_json(latest_checkpoint(out) / "trainer_state.json")["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    margins = [h["rewards/margins"] for h in history if "rewards/margins" in h]
    summary = {
        "final": final.path,
        "snapshots": [c.path for c in ckpts],
        "steps": final.step,
        "pairs": len(pairs),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "last_reward_margin": margins[-1] if margins else None,
        "train_seconds": round(final.wall_clock_s, 1),
    }
    write_json(out / "summary.json", summary)
    return summary


def report(out: Path, summary: dict) -> None:
    """The summary, where the policy is, and what to run next."""
    print(json.dumps(summary, indent=2))
    print(f"policy saved to {summary['final']}")
    print(
        f"next: condtune best-of-n model={summary['final']} scorer=runs/scorer n=1 "
        f"output_dir={out}/samples  # sample it, score it"
    )


if __name__ == "__main__":
    sys.exit(main())
