"""The model's side of conditional SFT: the tag tokens added (their embedding rows start at the mean),
the parts kept fixed (old embedding rows, lower layers), the LoRA targets checked and configured."""

from __future__ import annotations

import logging

import torch

from condtune.config import ConfigError
from condtune.modeling import lora_config

log = logging.getLogger(__name__)


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


def prepare_model(model, tokenizer, s, n_new: int):
    """Freeze what the SFT settings ``s`` keep fixed (the old embedding rows, the lower layers); the LoRA
    config of ``s`` (None for a full fine-tune), which saves the embeddings too when ``n_new`` tag tokens
    were added."""
    peft_cfg = None
    if s.lora_r:
        peft_cfg = lora_config(
            s.lora_r, s.lora_alpha, s.lora_target_modules, modules_to_save=["embed_tokens"] if n_new else None
        )
    if s.freeze_embeddings or s.freeze_layers:
        freeze_old_embeddings(model, len(tokenizer) - n_new)
    if s.freeze_layers:
        freeze_lower_layers(model, s.freeze_layers)
    return peft_cfg
