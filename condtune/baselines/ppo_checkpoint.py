"""PPO's checkpoints: what a run holds (:class:`PPOState`), written atomically to
``output_dir/checkpoints/checkpoint-N`` (the scheme of :mod:`condtune.checkpointing`: policy, value
head, optimizer, KL controller, RNG, step, and ``state.json`` last; the newest ``save_total_limit``
kept) so that a resumed run is exact, and the ``output_dir/final`` policy."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from condtune import checkpointing
from condtune.baselines import rl_math as M
from condtune.baselines.ppo_config import PPOConfig, uses_lora
from condtune.baselines.ppo_models import ActorCritic
from condtune.checkpointing import CHECKPOINTS
from condtune.config import defaults_dict, to_dict
from condtune.io import atomic_dir, write_json

COMPLETE = "state.json"
"""written last: a checkpoint without it is incomplete"""


@dataclass
class PPOState:
    """Everything an update mutates; what a checkpoint holds."""

    actor: ActorCritic
    ref: nn.Module | None
    tokenizer: object
    optimizer: torch.optim.Optimizer
    kl_ctl: M.FixedKLController | M.AdaptiveKLController
    step: int = 0
    elapsed: float = 0.0


# ----------------------------------------------------------------------------- checkpoints
OPERATIONAL = ("overwrite", "threads", "progress", "sample_every", "save_steps", "save_total_limit")
"""settings that do not change what is trained: not part of the run's identity"""
OUTPUTS = (CHECKPOINTS, "metrics.jsonl", "final")


def claim_output_dir(cfg: PPOConfig) -> None:
    """``output_dir`` becomes this run's (:func:`condtune.checkpointing.claim_run`): a rerun of the
    same run resumes there, another run's folder is an error; ``overwrite=true`` starts afresh."""
    if cfg.overwrite:
        for o in OUTPUTS:
            target = Path(cfg.output_dir) / o
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    identity = {k: v for k, v in to_dict(cfg).items() if k not in OPERATIONAL}
    checkpointing.claim_run(
        cfg.output_dir,
        identity,
        "ppo",
        overwrite=cfg.overwrite,
        outputs=OUTPUTS,
        hint="use another output_dir=, or overwrite=true to start afresh there",
        defaults=defaults_dict(cfg),
    )


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints, oldest first."""
    return checkpointing.checkpoint_dirs(output_dir, complete=COMPLETE)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    return checkpointing.latest_checkpoint(output_dir, complete=COMPLETE)


def save_checkpoint(state: PPOState, cfg: PPOConfig) -> Path:
    """Atomically write ``output_dir/checkpoints/checkpoint-N`` and prune older ones."""
    target = Path(cfg.output_dir) / CHECKPOINTS / f"checkpoint-{state.step}"
    with atomic_dir(target) as tmp:
        state.actor.lm.save_pretrained(tmp / "policy")  # adapters only with LoRA
        state.tokenizer.save_pretrained(tmp / "policy")
        torch.save(state.actor.value_head.state_dict(), tmp / "value_head.pt")
        torch.save(state.optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(rng, tmp / "rng.pt")
        write_json(
            tmp / COMPLETE,
            {
                "step": state.step,
                "elapsed": state.elapsed,
                "kl_controller": state.kl_ctl.state_dict(),
                "base_model": cfg.model,
                "lora": uses_lora(cfg),
                "config": to_dict(cfg),
            },
        )
    for old in checkpoint_dirs(cfg.output_dir)[: -max(cfg.save_total_limit, 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(path: Path, state: PPOState) -> None:
    """Restore value head, optimizer, KL controller, RNG and step (the policy weights were
    loaded by :func:`condtune.baselines.ppo_models.build_models`)."""
    meta = json.loads((path / COMPLETE).read_text())
    dev = next(state.actor.parameters()).device
    state.actor.value_head.load_state_dict(torch.load(path / "value_head.pt", map_location=dev, weights_only=True))
    state.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=dev, weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state.kl_ctl.load_state_dict(meta["kl_controller"])
    state.step = int(meta["step"])
    state.elapsed = float(meta.get("elapsed", 0.0))


# ----------------------------------------------------------------------------- final policy
def save_final(state: PPOState, cfg: PPOConfig, summary: dict) -> Path:
    """``output_dir/final``: a plain transformers policy (LoRA merged), value head and a card."""
    target = Path(cfg.output_dir) / "final"
    lm = state.actor.lm
    if uses_lora(cfg):
        lm = copy.deepcopy(lm).merge_and_unload()
    with atomic_dir(target) as tmp:
        lm.save_pretrained(tmp)
        state.tokenizer.save_pretrained(tmp)
        torch.save(state.actor.value_head.state_dict(), tmp / "value_head.pt")
        write_json(
            tmp / "ppo_card.json",
            {
                "method": "ppo",
                "base_model": cfg.model,
                "scorer": cfg.scorer or f"builtin:{cfg.reward}",
                "updates": state.step,
                "seconds": state.elapsed,
                "summary": summary,
                "config": to_dict(cfg),
            },
        )
    return target
