"""Conditional SFT: tags before the answer, loss on the answer only (trl's SFTTrainer on
prompt/completion rows masks the prompt), optional LoRA, checkpoints and resume.

The saved policy directory carries ``condtune_policy.json``: the tag card (bin edges, tag
format, attribute vocabularies) and the base model, so generation maps a requested score to
the right tag without the user knowing the bins.
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

import numpy as np
import pandas as pd
import torch

from condtune.artifacts import ArtifactError, ArtifactMissing, read_json_object
from condtune.checkpointing import CHECKPOINTS, claim_run, latest_checkpoint
from condtune.config import ConfigError, check_ranges, defaults_dict
from condtune.data import table_digest
from condtune.io import umask_modes, write_json
from condtune.modeling import LORA_ATTENTION_MLP, lora_config, processes
from condtune.relabel import TagCard, tagged_prompt
from condtune.sampling import context_length
from condtune.sft_columns import ALT_COLUMNS, REF_COLUMNS
from condtune.trl_compat import trainer_args

log = logging.getLogger(__name__)
POLICY_CARD = "condtune_policy.json"


@dataclass(frozen=True)
class SFTSettings:
    max_steps: int = 150
    """optimizer steps"""
    batch_size: int = 16
    """examples per step"""
    lr: float = 1e-4
    """peak learning rate"""
    max_length: int = 96
    """tokens per example (prompt + completion)"""
    warmup_ratio: float = 0.05
    """fraction of steps warming up"""
    lr_schedule: Literal["linear", "constant"] = "linear"
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
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
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
            "max_steps, batch_size, save_steps, pairwise_pairs >= 1; lr > 0; "
            "kl_coef, entropy_coef, tag_contrast, contrast_temperature, pairwise, pairwise_margin, lora_r, "
            "freeze_layers >= 0; "
            "0 <= condition_dropout, warmup_ratio < 1",
        )


def add_tag_tokens(model, tokenizer, tokens: list[str]) -> int:
    """Add new special tokens; new embedding rows start at the mean of the existing ones."""
    new = [t for t in tokens if t not in tokenizer.get_vocab()]
    if not new:
        return 0
    old = model.get_input_embeddings().weight.shape[0]
    tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(0, keepdim=True)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            out.weight[old:] = out.weight[:old].mean(0, keepdim=True)
    return len(new)


def sft_dataset(
    df: pd.DataFrame,
    tokenizer,
    max_length: int,
    *,
    condition_dropout: float = 0.0,
    seed: int = 0,
    with_reference: bool = False,
    contrast: TagCard | None = None,
    contrast_pairs: str = "any",
    contrast_temperature: float = 0.0,
):
    """Tokenized rows (``input_ids``, ``labels`` with -100 on the tagged prompt), so trl trains
    exactly these tokens.

    A row with ``completion_ids`` (a model's own sample) is trained as sampled: those ids, with EOS
    only where the model emitted it, never decoded and re-encoded. A text ``completion`` (a human
    text, complete) is encoded after a space and ends with EOS.

    ``condition_dropout``: that share of rows (drawn with ``seed``) reads ``uncond_prompt`` (the
    prompt with its attribute tags but no score tag; default: the plain ``prompt``) instead of the
    tagged one. ``with_reference`` adds ``ref_input_ids``/``ref_labels``: the plain
    prompt and the same answer tokens, for the reference of the KL term. ``contrast`` (the card)
    adds ``alt_input_ids``/``alt_labels``/``alt_weight``/``alt_target``: the same answer under another
    bin's tag (drawn with ``seed``, or the mirrored bin with ``contrast_pairs="mirror"``; weight 0 on
    rows that lost their tag) and the label of the pair (1, or with ``contrast_temperature`` > 0 the
    soft label of the row's ``score``), for the tag-contrast term.
    """
    import datasets

    own = df["completion_ids"] if "completion_ids" in df.columns else [None] * len(df)
    dropped = np.random.default_rng(seed).random(len(df)) < condition_dropout
    plain = df["prompt"] if "prompt" in df.columns else df["tagged_prompt"]
    uncond = df["uncond_prompt"] if "uncond_prompt" in df.columns else plain
    if (condition_dropout > 0 or with_reference or contrast is not None) and "prompt" not in df.columns:
        raise ValueError(
            "condition dropout, the KL term and the tag contrast need the untagged 'prompt' column "
            "beside 'tagged_prompt'"
        )
    rows: dict[str, list] = {
        "input_ids": [],
        "labels": [],
        **({c: [] for c in REF_COLUMNS} if with_reference else {}),
        **({c: [] for c in ALT_COLUMNS} if contrast is not None else {}),
    }
    if contrast is not None:
        if "score_bin" not in df.columns:
            raise ValueError("the tag-contrast term needs the 'score_bin' column of relabelled rows")
        k, bins = contrast.binning.k, df["score_bin"].to_numpy()
        other = (bins + np.random.default_rng(seed + 1).integers(1, k, len(df))) % k  # uniform over the other bins
        if contrast_pairs == "mirror":
            other = np.where(k - 1 - bins != bins, k - 1 - bins, other)
        target = np.ones(len(df))
        if contrast_temperature > 0:
            from condtune.kl_sft import soft_contrast_labels  # kl_sft imports trl

            if "score" not in df.columns:
                raise ValueError("soft contrast labels (contrast_temperature > 0) need the rows' 'score' column")
            centers = np.asarray(contrast.binning.centers, dtype=float)
            target = soft_contrast_labels(df["score"].to_numpy(), centers[bins], centers[other], contrast_temperature)
        attrs = df["tags"] if "tags" in df.columns else [{}] * len(df)

    for i, (tagged, prompt, untagged, text, sampled, drop) in enumerate(
        zip(df["tagged_prompt"], plain, uncond, df["completion"], own, dropped)
    ):
        p = encode(tokenizer, untagged if drop else tagged)
        alt = p  # without the contrast, only its length enters the cut below
        if contrast is not None:
            alt = encode(tokenizer, tagged_prompt(contrast, prompt, bin_index=int(other[i]), tags=attrs[i]))
        c = answer_ids(tokenizer, text, sampled)[: max(max_length - max(len(p), len(alt)), 0)]
        if contrast is not None:
            rows["alt_input_ids"].append(alt + c)
            rows["alt_labels"].append([-100] * len(alt) + c)
            rows["alt_weight"].append(0.0 if drop else 1.0)
            rows["alt_target"].append(float(target[i]))
        rows["input_ids"].append(p + c)
        rows["labels"].append([-100] * len(p) + c)
        if with_reference:
            r = encode(tokenizer, prompt)
            rows["ref_input_ids"].append(r + c)
            rows["ref_labels"].append([-100] * len(r) + c)
    return datasets.Dataset.from_dict(rows)


def answer_ids(tokenizer, text: str, sampled=None) -> list[int]:
    """The tokens an answer is trained as: a model's own sample as sampled (``sampled``, its ids, EOS
    only where the model emitted it), or a text (a human text, complete) encoded after a space and
    ended with EOS."""
    if isinstance(sampled, (list, tuple, np.ndarray)):  # NaN/None where a row has no sampled ids
        return [int(t) for t in sampled]
    return encode(tokenizer, text if text.startswith((" ", "\n")) else " " + text) + [tokenizer.eos_token_id]


def encode(tokenizer, text: str) -> list[int]:
    """``text``'s token ids, without the special tokens a tokenizer may add (the rows add their own)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def scored_pairs(pairs: pd.DataFrame, margin: float, *, source: str = "pairs") -> np.ndarray:
    """The within-prompt pairs (:func:`condtune.kl_sft.within_prompt_pairs`) of a table of several
    answers a prompt (``prompt``, ``completion`` or ``completion_ids``, ``score``), after checking it;
    ``source`` names the table in errors."""
    from condtune.kl_sft import within_prompt_pairs  # kl_sft imports trl

    missing = [c for c in ("prompt", "score") if c not in pairs.columns]
    if "completion" not in pairs.columns and "completion_ids" not in pairs.columns:
        missing.append("completion")
    if missing:
        raise ValueError(f"{source}: the pairwise term needs the columns {missing}; it has {list(pairs.columns)}")
    scores = pd.to_numeric(pairs["score"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"{source}: row {row}: 'score' is {pairs['score'].iloc[row]!r}, not a finite number")
    found = within_prompt_pairs(scores, pairs["prompt"].to_numpy(), margin)
    if len(found) == 0:
        raise ValueError(
            f"{source}: no two answers to one prompt differ in score by more than {margin} "
            f"({len(pairs)} answers, {pairs['prompt'].nunique()} prompts): the pairwise term needs several "
            "answers a prompt (or a lower sft.pairwise_margin)"
        )
    return found


def pair_bank(pairs: pd.DataFrame, found: np.ndarray, tokenizer, card: TagCard, max_length: int):
    """The :class:`condtune.kl_sft.PairBank` of the answers of ``pairs`` and their pairs ``found``
    (:func:`scored_pairs`): each answer under the card's top and bottom bin's tag (and its attribute
    ``tags``, where the card has attributes), cut to ``max_length`` tokens."""
    from condtune.kl_sft import PairBank  # kl_sft imports trl

    k = card.binning.k
    attrs = pairs["tags"] if card.attributes and "tags" in pairs.columns else [{}] * len(pairs)
    texts = pairs["completion"] if "completion" in pairs.columns else [""] * len(pairs)
    own = pairs["completion_ids"] if "completion_ids" in pairs.columns else [None] * len(pairs)

    top, bottom, answers = [], [], []
    for prompt, a, text, sampled in zip(pairs["prompt"], attrs, texts, own):
        t = encode(tokenizer, tagged_prompt(card, prompt, bin_index=k - 1, tags=a))
        b = encode(tokenizer, tagged_prompt(card, prompt, bin_index=0, tags=a))
        top.append(t)
        bottom.append(b)
        answers.append(answer_ids(tokenizer, text, sampled)[: max(max_length - max(len(t), len(b)), 1)])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PairBank(top=top, bottom=bottom, answers=answers, pairs=found, pad_token_id=pad)


def freeze_old_embeddings(model, n_old: int) -> None:
    """Train no embedding row below ``n_old`` (the tied output layer included); rows added for new
    tag tokens still learn."""
    emb = model.get_input_embeddings().weight
    keep = torch.zeros(emb.shape[0], 1, dtype=emb.dtype)
    keep[n_old:] = 1
    if n_old >= emb.shape[0]:
        emb.requires_grad_(False)
    else:
        emb.register_hook(lambda g: g * keep.to(g.device))
    out = model.get_output_embeddings()
    if out is not None and out.weight is not emb:
        out.weight.requires_grad_(False)


def freeze_lower_layers(model, n: int) -> None:
    """Train none of the first ``n`` decoder layers (``model.model.layers`` of a decoder-only LM)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"sft.freeze_layers: {type(model).__name__} has no model.layers to freeze")
    if n >= len(layers):
        raise ValueError(f"sft.freeze_layers={n}: the model has only {len(layers)} decoder layers")
    for layer in layers[:n]:
        layer.requires_grad_(False)


def check_lora_targets(model, targets: list[str]) -> None:
    """Before any training: ``sft.lora_target_modules`` must name modules of ``model`` (peft's rule: a
    module whose name is a target or ends with ``.target``); none matched is a ConfigError naming the
    setting and some module names it could take; targets that match nothing beside others that do
    are a warning."""
    names = [n for n, _ in model.named_modules() if n]
    hit = {t: any(n == t or n.endswith("." + t) for n in names) for t in targets}
    if any(hit.values()):
        missing = [t for t, ok in hit.items() if not ok]
        if missing:
            log.warning("sft.lora_target_modules: %s match no module of the model (the others get LoRA)", missing)
        return
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    raise ConfigError(
        f"sft.lora_target_modules={list(targets)}: match no module of {type(model).__name__}; "
        f"its linear layers are named {linear[:12]}"
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
    from trl import SFTConfig, SFTTrainer

    out_dir = Path(out_dir)
    if s.pairwise > 0 and pairs is None:
        raise ConfigError("sft.pairwise > 0 needs a table of several scored answers a prompt (pairs_data=...)")
    pairs = pairs if s.pairwise > 0 else None  # without the term the table is not part of the run
    found = scored_pairs(pairs, s.pairwise_margin) if pairs is not None else None  # checked before the claim
    if s.lora_r:
        check_lora_targets(model, s.lora_target_modules)
    limit = context_length(model, tokenizer)
    if limit and s.max_length > limit:
        raise ConfigError(f"sft.max_length={s.max_length}: beyond the model's context of {limit} tokens")
    procs = processes()  # one process, or each of `accelerate launch` / torchrun's
    if procs.num_processes > 1:
        log.info(
            "conditional SFT: process %d of %d, %d rows a step in all",
            procs.process_index + 1,
            procs.num_processes,
            s.batch_size * procs.num_processes,
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
    ref = (
        (ref_model if ref_model is not None else copy.deepcopy(model)) if s.kl_coef > 0 or s.entropy_coef > 0 else None
    )
    n_new = add_tag_tokens(model, tokenizer, card.tag_format.special_tokens(card.binning.k, card.attributes))
    args = trainer_args(
        SFTConfig,
        output_dir=str(out_dir / "checkpoints"),
        report_to=report_to,
        run_name=out_dir.name,
        max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.lr,
        warmup_steps=max(1, int(s.warmup_ratio * s.max_steps)),
        lr_scheduler_type=s.lr_schedule,
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
    peft_cfg = None
    if s.lora_r:
        peft_cfg = lora_config(
            s.lora_r, s.lora_alpha, s.lora_target_modules, modules_to_save=["embed_tokens"] if n_new else None
        )
    if s.freeze_embeddings or s.freeze_layers:
        freeze_old_embeddings(model, len(tokenizer) - n_new)
    if s.freeze_layers:
        freeze_lower_layers(model, s.freeze_layers)
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
    common = dict(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_cfg,
        callbacks=callbacks,
    )
    if ref is None and s.tag_contrast == 0 and s.pairwise == 0:
        trainer = SFTTrainer(**common)
    else:
        from condtune.kl_sft import ConditionalSFTTrainer, PairedCollator  # kl_sft imports trl

        trainer = ConditionalSFTTrainer(
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
    t0 = time.time()
    resume = latest_checkpoint(out_dir)
    if resume:
        log.info("resuming the run in %s from %s", out_dir, resume.name)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.time() - t0
    final = trainer.model.merge_and_unload() if s.lora_r else trainer.model
    from accelerate.utils import DistributedType

    # several processes, or FSDP on any count (its parameters are sharded DTensors even on one GPU):
    # every process takes part in gathering the weights, one writes
    sharded = procs.num_processes > 1 or trainer.accelerator.distributed_type == DistributedType.FSDP
    gathered = trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    if procs.is_main_process:
        save_policy(final, tokenizer, card, out_dir=out_dir, base=base, state_dict=None if s.lora_r else gathered)
    procs.wait_for_everyone()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "train_seconds": seconds,
        "steps": int(result.global_step),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "new_tokens": n_new,
    }


def save_policy(
    model, tokenizer, card: TagCard, *, out_dir: str | Path, base: str, state_dict: dict | None = None
) -> Path:
    """Write the weights (``state_dict`` when given: the gathered weights of a sharded run), the
    tokenizer and the policy card; the card goes last (it marks completion)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:
        state_dict = drop_tied_copies(model, state_dict)
    with umask_modes(out_dir):  # safetensors writes 0600 files; the policy's follow the umask
        model.save_pretrained(out_dir, state_dict=state_dict)
        tokenizer.save_pretrained(out_dir)
    write_json(out_dir / POLICY_CARD, {"base_model": base, **card.to_dict()})
    return out_dir


def drop_tied_copies(model, state_dict: dict) -> dict:
    """A gathered state dict (FSDP) holds a tied output embedding as a second full copy, which
    save_pretrained then writes; drop it, so the policy is saved as a plain run saves it."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or inp is None or not getattr(model.config, "tie_word_embeddings", False):
        return state_dict
    names = {id(m): n for n, m in model.named_modules()}
    key, tied_to = f"{names.get(id(out))}.weight", f"{names.get(id(inp))}.weight"
    if key in state_dict and tied_to in state_dict and torch.equal(state_dict[key], state_dict[tied_to]):
        return {k: v for k, v in state_dict.items() if k != key}
    return state_dict


def load_policy_card(path: str | Path) -> tuple[TagCard, str | None]:
    """The policy's tag card and base model; a missing, truncated or incomplete card is an
    :class:`~condtune.artifacts.ArtifactError` naming it."""
    p = Path(path) / POLICY_CARD
    if not p.exists():
        raise ArtifactMissing(path, f"not a condtune policy (no {POLICY_CARD}); train one with `condtune train`")
    card = TagCard.read(p, "policy card", skip=("base_model",))
    base = read_json_object(p, "policy card").get("base_model")
    if base is not None and not isinstance(base, str):
        raise ArtifactError(p, f"base_model must be a model name or folder, got {base!r}")
    return card, base
