"""RLOO baseline (trl) against a scorer, with the KL to the base model through ``rloo.beta``.

    condtune rloo --config rloo
    condtune rloo scorer=runs/scorer prompts=docs/rating_prompts.txt rloo.checkpoints=[20,40] output_dir=runs/rloo

REINFORCE with a leave-one-out baseline: ``rloo.num_generations`` completions per prompt, each one's
advantage its reward minus the mean reward of the others; the reward is the scorer's score of the
completion (after its prompt, if the scorer reads prompts). The policy is snapshotted at each of
``rloo.checkpoints`` (``output_dir/step_N``, the last is the final policy); rerunning the same command
resumes from the latest checkpoint in ``output_dir/checkpoints``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from condtune import config as C
from condtune.baselines.rloo import RLOOSettings, train_rloo
from condtune.checkpointing import (
    CHECKPOINTS,
    RUN_RECORD,
    Checkpoint,
    latest_checkpoint,
)
from condtune.commands.scorer_runs import claim_scorer_run
from condtune.io import read_json, write_json
from condtune.modeling import model_dir
from condtune.outputs import claim_output
from condtune.sampling import SamplingConfig
from condtune.scorer import Scorer
from condtune.tracking import check_report_to

log = logging.getLogger("condtune.rloo")


@dataclass
class RLOOJobConfig:
    model: str = "smollm2-135m"
    """base policy (embedded-default name, HF id or local dir); also the frozen reference"""
    scorer: str = "runs/scorer"
    """scorer directory (`condtune scorer train`) whose score is the reward"""
    prompts: str = ""
    """prompts file (one per line, or .jsonl/.json records with a prompt field); empty = built-in review openings"""
    rloo: RLOOSettings = field(default_factory=RLOOSettings)
    """RLOO settings"""
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=24))
    """the rollouts (max_new_tokens, temperature and top_p are used)"""
    seed: int = 0
    """training seed"""
    output_dir: str = "runs/rloo"
    """output folder: step_N policies, summary.json, the trainer's checkpoints (rerunning resumes there)"""
    overwrite: bool = False
    """start afresh in an output_dir that holds another run (other inputs or settings), or files of another kind"""
    report_to: str = "none"
    """log training metrics: none | tensorboard (under output_dir/checkpoints/runs) | wandb"""

    def __post_init__(self):
        check_report_to(self.report_to)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(RLOOJobConfig, argv)
    out = claim_output(
        cfg,
        "output_dir",
        job="rloo",
        argv=argv,
        what="a rloo run",
        marks=(RUN_RECORD, CHECKPOINTS),
        overwrite=cfg.overwrite,
    )
    prompts, scorer, base = build(cfg, out)
    ckpts = train(cfg, out, prompts, scorer, base)
    summary = save(out, ckpts)
    report(cfg, out, summary)
    return 0


def build(cfg: RLOOJobConfig, out: Path) -> tuple[list[str], Scorer, str]:
    """The prompts, the reward (the scorer), and the base policy as a directory (trl rebuilds the
    reference from it), once the run is claimed for what the inputs hold."""
    prompts, scorer = claim_scorer_run(cfg, out, "rloo", ("snapshots.json", "summary.json"))
    return prompts, scorer, model_dir(cfg.model, out / "base")


def train(cfg: RLOOJobConfig, out: Path, prompts: list[str], scorer: Scorer, base: str) -> list[Checkpoint]:
    """trl's RLOOTrainer, snapshots at rloo.checkpoints with their cost."""
    s = cfg.rloo
    log.info(
        "rloo: %d prompts, reward=%s, base=%s, %d steps of %d completions (%d per prompt), beta=%g",
        len(prompts),
        cfg.scorer,
        cfg.model,
        max(s.checkpoints),
        s.per_device_train_batch_size,
        s.num_generations,
        s.beta,
    )
    return train_rloo(
        base,
        prompts,
        scorer.score_pairs,
        s=s,
        sampling=cfg.sampling,
        out_dir=out,
        seed=cfg.seed,
        report_to=cfg.report_to,
    )


def save(out: Path, ckpts: list[Checkpoint]) -> dict:
    """The run's summary (summary.json) beside the policies."""
    final = max(ckpts, key=lambda c: c.step)
    history = read_json(latest_checkpoint(out) / "trainer_state.json")["log_history"]
    rewards = [h["reward"] for h in history if "reward" in h]
    summary = {
        "final": final.path,
        "snapshots": [c.path for c in ckpts],
        "steps": final.step,
        "first_reward": rewards[0] if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
        "last_loss": next((h["loss"] for h in reversed(history) if "loss" in h), None),
        "last_kl": next((h["kl"] for h in reversed(history) if "kl" in h), None),
        "generated_tokens": final.generated_tokens,
        "scorer_calls": final.scorer_calls,
        "train_seconds": round(final.wall_clock_s, 1),
    }
    write_json(out / "summary.json", summary)
    return summary


def report(cfg: RLOOJobConfig, out: Path, summary: dict) -> None:
    """The summary, where the policy is, and what to run next."""
    print(json.dumps(summary, indent=2))
    print(f"policy saved to {summary['final']}")
    print(
        f"next: condtune best-of-n model={summary['final']} scorer={cfg.scorer} n=1 "
        f"output_dir={out}/samples  # sample it, score it"
    )


if __name__ == "__main__":
    sys.exit(main())
