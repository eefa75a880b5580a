"""Conditional SFT: tags before the answer, loss on the answer only (trl's SFTTrainer on
prompt/completion rows masks the prompt), optional LoRA, checkpoints and resume.

:func:`train_conditional` builds the trainer (:func:`build_trainer`), trains it and saves the policy
(:func:`save_trained`, a folder as :mod:`condtune.saved_policy` writes it); the rows it trains on
are built by :mod:`condtune.sft_rows`, the model's tag tokens and frozen parts set by
:mod:`condtune.sft_model`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from condtune.checkpointing import CHECKPOINTS, claim_run, latest_checkpoint
from condtune.config import ConfigError, check_ranges, defaults_dict
from condtune.modeling import LORA_ATTENTION_MLP, processes
from condtune.relabel import TagCard, tagged_prompt
from condtune.sampling import context_length
from condtune.saved_policy import POLICY_CARD, RECIPE, save_policy
from condtune.sft_model import add_tag_tokens, check_lora_targets, prepare_model
from condtune.sft_rows import pair_bank, scored_pairs, sft_dataset
from condtune.tables import table_digest
from condtune.trl_compat import trainer_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTSettings:
    max_steps: int = 150
    """optimizer steps"""
    per_device_train_batch_size: int = 16
    """examples per step"""
    learning_rate: float = 1e-4
    """peak learning rate"""
    max_length: int = 96
    """tokens per example (prompt + completion)"""
    warmup_ratio: float = 0.05
    """fraction of steps warming up"""
    lr_scheduler_type: Literal["linear", "constant"] = "linear"
    """after warm-up: linear decay to 0, or constant (the online loop's rounds)"""
    lora_r: int = 0
    """LoRA rank (0 = full fine-tune)"""
    lora_alpha: int = 32
    """LoRA alpha"""
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_ATTENTION_MLP))
    """modules that get LoRA adapters (with lora_r > 0)"""
    save_steps: int = 50
    """checkpoint every N steps (resume picks the latest)"""
    seed: int = 0
    """data order / init seed (and which rows lose their tag to condition dropout)"""
    kl_coef: float = 0.0
    """weight of the exact per-token KL(policy(.|tags, prompt) || base(.|prompt)) over answer tokens (0 = plain SFT)"""
    entropy_coef: float = 0.0
    """weight of an entropy bonus on answer tokens (with kl_coef > 0)"""
    condition_dropout: float = 0.1
    """share of rows trained without their tags: the same model is also the unconditional one (for guidance)"""
    freeze_embeddings: bool = False
    """keep the token embeddings (tied output layer included) fixed; new tag tokens still learn"""
    freeze_layers: int = 0
    """keep the embeddings and the first N decoder layers fixed: the backward pass stops above them
    (a cheaper step; with new tag tokens the embeddings still learn those rows, and it stops lower)"""
    tag_contrast: float = 0.0
    """weight of the tag contrast: -log sigmoid(log pi(y|tag,x) - log pi(y|other bin's tag,x)) (GeDi); 0 = off"""
    contrast_pairs: Literal["any", "mirror"] = "any"
    """the other bin of the tag contrast: any other bin, uniformly, or the mirrored one (k - 1 - bin, the pair
    that guidance against the mirrored tag uses; the middle bin, its own mirror, draws any other)"""
    contrast_temperature: float = 0.0
    """0: the tag contrast's label is hard, the answer belongs to its own bin (GeDi). T > 0: a soft label,
    sigmoid((c_own - c_other) * (z - (c_own + c_other) / 2) / T) with z the row's score and c the two bins'
    centres (kl_sft.soft_contrast_labels): how far the answer sits on its own bin's side of the pair, so the
    contrast also ranks the answers of one bin"""
    pairwise: float = 0.0
    """weight of a ranking term on the top-against-bottom contrast s(y) = log pi(y|top tag,x) - log pi(y|bottom
    tag,x): -log sigmoid(s(y+) - s(y-)) for two answers to one prompt whose scores differ by more than
    pairwise_margin (kl_sft.pairwise_contrast_loss), from a table of several answers a prompt (the train
    command's pairs_data; the bench's base-model samples); 0 = off"""
    pairwise_margin: float = 0.5
    """the least score gap of a pair of the ranking term"""
    pairwise_pairs: int = 8
    """pairs of the ranking term a step (each read under two tags: 4 rows a pair)"""

    def __post_init__(self):
        checks = {
            "max_steps": self.max_steps >= 1,
            "per_device_train_batch_size": self.per_device_train_batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "max_length": self.max_length >= 2,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "kl_coef": self.kl_coef >= 0,
            "entropy_coef": self.entropy_coef >= 0,
            "tag_contrast": self.tag_contrast >= 0,
            "contrast_temperature": self.contrast_temperature >= 0,
            "pairwise": self.pairwise >= 0,
            "pairwise_margin": self.pairwise_margin >= 0,
            "pairwise_pairs": self.pairwise_pairs >= 1,
            "condition_dropout": 0 <= self.condition_dropout < 1,
            "lora_r": self.lora_r >= 0,
            "freeze_layers": self.freeze_layers >= 0,
            "save_steps": self.save_steps >= 1,
        }
        check_ranges(
            self,
            checks,
            "max_steps, per_device_train_batch_size, save_steps, pairwise_pairs >= 1; learning_rate > 0; "
            "kl_coef, entropy_coef, tag_contrast, contrast_temperature, pairwise, pairwise_margin, lora_r, "
            "freeze_layers >= 0; "
            "0 <= condition_dropout, warmup_ratio < 1",
        )


def run_identity(
    df: pd.DataFrame, card: TagCard, s: SFTSettings, *, base: str, pairs: pd.DataFrame | None = None
) -> dict:
    """What a training run is: a digest of its rows, its card, its settings and its base model (and
    of the pairwise term's answers, when it has them)."""
    digest = table_digest(df)
    identity = {
        "rows": len(df),
        "data_digest": digest,
        "card": card.to_dict(),
        "sft": asdict(s),
        "base_model": str(base),
    }
    if pairs is not None:
        scores = pd.to_numeric(pairs["score"], errors="coerce").to_numpy(dtype=float).round(9)
        identity["pairs"] = {
            "rows": len(pairs),
            "data_digest": table_digest(pairs),
            "score_digest": hashlib.sha256(scores.tobytes()).hexdigest()[:16],  # the scores make the pairs
        }
    return json.loads(json.dumps(identity))  # as it reads back from disk


def train_conditional(
    model,
    tokenizer,
    df: pd.DataFrame,
    *,
    card: TagCard,
    s: SFTSettings,
    out_dir: str | Path,
    base: str,
    callbacks: list | None = None,
    ref_model=None,
    pairs: pd.DataFrame | None = None,
    overwrite: bool = False,
    report_to: str = "none",
) -> dict:
    """Fine-tune ``model`` on the tagged rows of ``df``; save the policy with its card; return stats.

    One run, one learning-rate schedule over ``s.max_steps``; ``callbacks`` (transformers
    ``TrainerCallback``) may snapshot it on the way (the benchmark's intermediate checkpoints).
    ``pairs`` (several scored answers a prompt, :func:`pair_bank`) feeds the ranking term of
    ``s.pairwise > 0``. With ``s.kl_coef > 0`` the KL term's reference is ``ref_model`` (default: a frozen copy of
    ``model`` as it is passed in, before the tags are added). Rerunning into ``out_dir`` resumes the
    same run from its latest complete checkpoint; another run's folder is an error unless
    ``overwrite`` (see :func:`condtune.checkpointing.claim_run`). ``report_to`` (see
    :mod:`condtune.tracking`) logs the loss to TensorBoard or W&B; it is not part of the run.
    """
    out_dir = Path(out_dir)
    trainer, n_new, procs = build_trainer(
        model,
        tokenizer,
        df,
        card=card,
        s=s,
        out_dir=out_dir,
        base=base,
        callbacks=callbacks,
        ref_model=ref_model,
        pairs=pairs,
        overwrite=overwrite,
        report_to=report_to,
    )
    t0 = time.time()
    result = resume_and_train(trainer, out_dir)
    seconds = time.time() - t0
    save_trained(trainer, tokenizer, card, s, procs, out_dir=out_dir, base=base)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "train_seconds": seconds,
        "steps": int(result.global_step),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "new_tokens": n_new,
    }


def build_trainer(
    model,
    tokenizer,
    df: pd.DataFrame,
    *,
    card: TagCard,
    s: SFTSettings,
    out_dir: Path,
    base: str,
    callbacks: list | None,
    ref_model,
    pairs: pd.DataFrame | None,
    overwrite: bool,
    report_to: str,
):
    """The trainer of one run of :func:`train_conditional`, ready to train, with the number of tag tokens
    it added and the job's processes: the run checked and claimed, the reference copied (for the KL
    term) before the tags are added to the model, the model prepared (LoRA, frozen parts), the rows built."""
    if s.pairwise > 0 and pairs is None:
        raise ConfigError("sft.pairwise > 0 needs a table of several scored answers a prompt (pairs_data=...)")
    pairs = pairs if s.pairwise > 0 else None  # without the term the table is not part of the run
    found = scored_pairs(pairs, s.pairwise_margin) if pairs is not None else None  # checked before the claim
    if s.lora_r:
        check_lora_targets(model, s.lora_target_modules)
    limit = context_length(model, tokenizer)
    if limit and s.max_length > limit:
        raise ConfigError(f"sft.max_length={s.max_length}: beyond the model's context of {limit} tokens")
    procs = claim_training(df, card, s, out_dir=out_dir, base=base, pairs=pairs, overwrite=overwrite)
    ref = (
        (ref_model if ref_model is not None else copy.deepcopy(model)) if s.kl_coef > 0 or s.entropy_coef > 0 else None
    )
    n_new = add_tag_tokens(model, tokenizer, card.tag_format.special_tokens(card.binning.k, card.attributes))
    args = sft_args(s, out_dir, report_to)
    peft_cfg = prepare_model(model, tokenizer, s, n_new)
    if card.attributes and "tags" in df.columns:  # dropout removes the score tag only
        df = df.assign(uncond_prompt=[tagged_prompt(card, p, tags=t) for t, p in zip(df["tags"], df["prompt"])])
    data = sft_dataset(
        df,
        tokenizer,
        s.max_length,
        condition_dropout=s.condition_dropout,
        seed=s.seed,
        with_reference=ref is not None,
        contrast=card if s.tag_contrast > 0 else None,
        contrast_pairs=s.contrast_pairs,
        contrast_temperature=s.contrast_temperature,
    )
    trainer = make_trainer(
        model, tokenizer, data, args, peft_cfg, callbacks, s=s, card=card, ref=ref, pairs=pairs, found=found
    )
    return trainer, n_new, procs


def claim_training(
    df: pd.DataFrame,
    card: TagCard,
    s: SFTSettings,
    *,
    out_dir: Path,
    base: str,
    pairs: pd.DataFrame | None,
    overwrite: bool,
):
    """The job's processes, once the main process has claimed (or cleared) ``out_dir`` for this run and the
    others agree (:func:`condtune.checkpointing.claim_run`)."""
    procs = processes()  # one process, or each of `accelerate launch` / torchrun's
    if procs.num_processes > 1:
        log.info(
            "conditional SFT: process %d of %d, %d rows a step in all",
            procs.process_index + 1,
            procs.num_processes,
            s.per_device_train_batch_size * procs.num_processes,
        )
    with procs.main_process_first():  # the main process claims (or clears) the folder; the others then agree
        claim_run(
            out_dir,
            run_identity(df, card, s, base=base, pairs=pairs),
            "training",
            overwrite=overwrite,
            outputs=(CHECKPOINTS, POLICY_CARD),
            defaults={"sft": defaults_dict(s)},
        )
    return procs


def sft_args(s: SFTSettings, out_dir: Path, report_to: str):
    """trl's ``SFTConfig`` of a run: checkpoints under ``out_dir/checkpoints``."""
    from trl import SFTConfig

    return trainer_args(
        SFTConfig,
        output_dir=str(out_dir / "checkpoints"),
        report_to=report_to,
        run_name=out_dir.name,
        max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_train_batch_size,
        learning_rate=s.learning_rate,
        warmup_steps=max(1, int(s.warmup_ratio * s.max_steps)),
        lr_scheduler_type=s.lr_scheduler_type,
        max_length=s.max_length,
        logging_steps=max(1, s.max_steps // 15),
        save_steps=s.save_steps,
        save_total_limit=2,
        seed=s.seed,
        completion_only_loss=True,
        ddp_find_unused_parameters=False,  # every trained weight is used (LoRA, frozen embeddings included)
        remove_unused_columns=False,  # the rows hold only what trains (sft_dataset); the collator reads them
        shuffle_dataset=True,
        dataset_num_proc=None,
        disable_tqdm=False,
    )


def make_trainer(
    model, tokenizer, data, args, peft_cfg, callbacks: list | None, *, s: SFTSettings, card: TagCard, ref, pairs, found
):
    """trl's SFTTrainer for plain SFT, else a :class:`condtune.kl_sft.ConditionalSFTTrainer` with the KL
    term's reference, the tag contrast and the ranking term's pair bank."""
    from trl import SFTTrainer

    common = dict(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_cfg,
        callbacks=callbacks,
    )
    if ref is None and s.tag_contrast == 0 and s.pairwise == 0:
        return SFTTrainer(**common)
    from condtune.kl_sft import ConditionalSFTTrainer, PairedCollator  # kl_sft imports trl

    return ConditionalSFTTrainer(
        **common,
        data_collator=PairedCollator(tokenizer.pad_token_id),
        ref_model=ref,
        kl_coef=s.kl_coef,
        entropy_coef=s.entropy_coef,
        tag_contrast=s.tag_contrast,
        pairwise=s.pairwise,
        pair_bank=pair_bank(pairs, found, tokenizer, card, s.max_length) if pairs is not None else None,
        pairs_per_step=s.pairwise_pairs,
        pair_seed=s.seed,
    )


def resume_and_train(trainer, out_dir: Path):
    """Train, resuming the run in ``out_dir`` from its latest complete checkpoint if it has one."""
    resume = latest_checkpoint(out_dir)
    if resume:
        log.info("resuming the run in %s from %s", out_dir, resume.name)
    return trainer.train(resume_from_checkpoint=str(resume) if resume else None)


def save_trained(trainer, tokenizer, card: TagCard, s: SFTSettings, procs, *, out_dir: Path, base: str) -> None:
    """Save the trained policy (LoRA merged in) into ``out_dir``; the weights of a sharded run are gathered
    by every process and written by the main one."""
    final = trainer.model.merge_and_unload() if s.lora_r else trainer.model
    from accelerate.utils import DistributedType

    # several processes, or FSDP on any count (its parameters are sharded DTensors even on one GPU):
    # every process takes part in gathering the weights, one writes
    sharded = procs.num_processes > 1 or trainer.accelerator.distributed_type == DistributedType.FSDP
    gathered = trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    if procs.is_main_process:
        state_dict = None if s.lora_r else gathered
        decode = RECIPE if s.tag_contrast > 0 else None  # the recipe's decode, which generate then uses
        save_policy(final, tokenizer, card, out_dir=out_dir, base=base, state_dict=state_dict, decode=decode)
    procs.wait_for_everyone()
