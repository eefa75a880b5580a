"""Batched sampling from a causal LM: n completions per prompt, left padding, progress bar."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from condtune.modeling import autocast


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 48
    """tokens generated per completion"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus sampling mass"""
    batch_size: int = 16
    """sequences per generate() call"""
    repetition_penalty: float = 1.0
    """>1 discourages repeats (1 = off)"""


@dataclass
class Samples:
    """Completions grouped by prompt: ``texts[i][j]`` is the j-th completion of prompt i."""

    texts: list[list[str]]
    n_tokens: list[list[int]] = field(default_factory=list)
    response_ids: list[list[list[int]]] = field(default_factory=list)
    """generated token ids (up to and including EOS), grouped like ``texts``"""

    @property
    def total_tokens(self) -> int:
        return sum(sum(row) for row in self.n_tokens)


def trim_at_eos(ids: Sequence[int], eos_id: int | None) -> list[int]:
    """Keep tokens up to and including the first EOS (all of them without one)."""
    ids = list(ids)
    return ids[: ids.index(eos_id) + 1] if eos_id is not None and eos_id in ids else ids


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int = 1,
    cfg: SamplingConfig = SamplingConfig(),
    seed: int | None = None,
    progress: bool = True,
    desc: str = "generating",
) -> Samples:
    """Sample ``n`` completions for each prompt (prompts are used verbatim, no chat template)."""
    if seed is not None:
        torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    flat = [p for p in prompts for _ in range(n)]
    out_ids: list[list[int]] = []
    model.eval()
    dev = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    bar = tqdm(total=len(flat), desc=desc, unit="seq", disable=not progress, leave=False)
    for start in range(0, len(flat), cfg.batch_size):
        chunk = flat[start : start + cfg.batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(dev)
        gen_kwargs = dict(
            max_new_tokens=cfg.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos,
            repetition_penalty=cfg.repetition_penalty,
        )
        if cfg.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
        else:
            gen_kwargs.update(do_sample=False)
        with autocast():
            seqs = model.generate(**enc, **gen_kwargs)
        new = seqs[:, enc["input_ids"].shape[1] :]
        out_ids += [trim_at_eos(row.tolist(), eos) for row in new]
        bar.update(len(chunk))
    bar.close()
    out_texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out_ids]

    def group(flat: list) -> list[list]:
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    return Samples(texts=group(out_texts), n_tokens=group([len(ids) for ids in out_ids]), response_ids=group(out_ids))
