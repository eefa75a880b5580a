"""Conditional SFT: tags before the answer, loss on the answer only (trl's SFTTrainer on
prompt/completion rows masks the prompt), optional LoRA, checkpoints and resume.

The saved policy directory carries ``condtune_policy.json``: the tag card (bin edges, tag
format, attribute vocabularies) and the base model, so generation maps a requested score to
the right tag without the user knowing the bins.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from condtune.io import read_json, write_json
from condtune.relabel import TagCard

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
    lora_r: int = 0
    """LoRA rank (0 = full fine-tune)"""
    lora_alpha: int = 32
    """LoRA alpha"""
    save_steps: int = 50
    """checkpoint every N steps (resume picks the latest)"""
    seed: int = 0
    """data order / init seed"""


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


def sft_dataset(df: pd.DataFrame, tokenizer, max_length: int):
    """Tokenized rows (``input_ids``, ``labels`` with -100 on the tagged prompt), so trl trains
    exactly these tokens.

    A row with ``completion_ids`` (a model's own sample) is trained as sampled: those ids, with EOS
    only where the model emitted it, never decoded and re-encoded. A text ``completion`` (a human
    text, complete) is encoded after a space and ends with EOS.
    """
    import datasets

    eos = tokenizer.eos_token_id
    own = df["completion_ids"] if "completion_ids" in df.columns else [None] * len(df)
    ids, labels = [], []
    for prompt, text, sampled in zip(df["tagged_prompt"], df["completion"], own):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if isinstance(sampled, (list, tuple, np.ndarray)):  # NaN/None where a row has no sampled ids
            c = [int(t) for t in sampled]
        else:
            c = tokenizer(text if text.startswith((" ", "\n")) else " " + text, add_special_tokens=False)["input_ids"] + [eos]
        ids.append((p + c)[:max_length])
        labels.append(([-100] * len(p) + c)[:max_length])
    return datasets.Dataset.from_dict({"input_ids": ids, "labels": labels})


def lora_config(s: SFTSettings, extra_modules: list[str] | None = None):
    from peft import LoraConfig

    return LoraConfig(
        r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        modules_to_save=extra_modules or None,
    )


def latest_checkpoint(out_dir: Path) -> str | None:
    ckpts = sorted(out_dir.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


def train_conditional(model, tokenizer, df: pd.DataFrame, card: TagCard, s: SFTSettings, out_dir: str | Path, base: str,
                      callbacks: list | None = None) -> dict:
    """Fine-tune ``model`` on the tagged rows of ``df``; save the policy with its card; return stats.

    One run, one learning-rate schedule over ``s.max_steps``; ``callbacks`` (transformers
    ``TrainerCallback``) may snapshot it on the way (the benchmark's intermediate checkpoints).
    """
    from trl import SFTConfig, SFTTrainer

    from condtune.trl_compat import trainer_args

    out_dir = Path(out_dir)
    n_new = add_tag_tokens(model, tokenizer, card.tag_format.special_tokens(card.binning.k, card.attributes))
    args = trainer_args(
        SFTConfig, output_dir=str(out_dir / "checkpoints"), max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size, learning_rate=s.lr, warmup_steps=max(1, int(s.warmup_ratio * s.max_steps)),
        lr_scheduler_type="linear", max_length=s.max_length, logging_steps=max(1, s.max_steps // 15),
        save_steps=s.save_steps, save_total_limit=2, seed=s.seed, completion_only_loss=True,
        shuffle_dataset=True, dataset_num_proc=None, disable_tqdm=False,
    )
    peft_cfg = lora_config(s, ["embed_tokens"] if n_new else None) if s.lora_r else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(df, tokenizer, s.max_length), processing_class=tokenizer,
                         peft_config=peft_cfg, callbacks=callbacks)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=latest_checkpoint(out_dir))
    seconds = time.time() - t0
    final = trainer.model.merge_and_unload() if s.lora_r else trainer.model
    save_policy(final, tokenizer, card, out_dir, base)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"train_seconds": seconds, "steps": int(result.global_step), "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None, "new_tokens": n_new}


def save_policy(model, tokenizer, card: TagCard, out_dir: str | Path, base: str) -> Path:
    """Write the weights, tokenizer and the policy card; the card goes last (it marks completion)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_json(out_dir / POLICY_CARD, {"base_model": base, **card.to_dict()})
    return out_dir


def load_policy_card(path: str | Path) -> tuple[TagCard, str | None]:
    p = Path(path) / POLICY_CARD
    if not p.exists():
        raise FileNotFoundError(f"{path}: not a condtune policy (no {POLICY_CARD}); train one with `condtune train`")
    d = read_json(p)
    return TagCard.from_dict(d), d.get("base_model")
