"""What the commands that sample a policy against a scorer share (rloo, best-of-n): their prompts and
scorer loaded, and their run claimed for what the inputs hold."""

from __future__ import annotations

from pathlib import Path

from condtune import config as C
from condtune.artifacts import check_model_ref
from condtune.batches import file_digest
from condtune.checkpointing import CHECKPOINTS, claim_command_run, weights_digest
from condtune.prompts import prompts_or_default
from condtune.scorer import Scorer


def claim_scorer_run(cfg, out: Path, job: str, outputs: tuple[str, ...]) -> tuple[list[str], Scorer]:
    """``cfg``'s prompts (or the default ones) and scorer, then ``out`` claimed for this run: its settings
    and digests of what its prompts, scorer and model hold (a run recorded before the digests is known
    by the inputs' names only). ``outputs`` (beside the checkpoints) are what ``overwrite`` removes."""
    prompts = prompts_or_default(cfg.prompts)
    try:
        scorer = Scorer.load(cfg.scorer)
    except FileNotFoundError as exc:
        raise C.ConfigError(f"scorer={cfg.scorer}: {exc}") from None
    model_path = check_model_ref(cfg.model)  # before the run is claimed: a missing or damaged model names itself
    contents = {
        "prompts_digest": file_digest(cfg.prompts),
        "scorer_digest": file_digest(cfg.scorer),
        "model_digest": weights_digest(model_path),
    }
    claim_command_run(out, cfg, job, contents, overwrite=cfg.overwrite, outputs=(CHECKPOINTS, *outputs))
    return prompts, scorer
