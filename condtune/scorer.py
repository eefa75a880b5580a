"""The scorer: a transformer encoder (default all-MiniLM-L6-v2) with mean pooling and a
one-output head, fine-tuned end to end from human ratings.

Objectives
----------
* ``regression`` (pointwise): targets are per-item means of the ratings after the chosen
  normalisation, standardised for training; predictions are mapped back to the raters' scale.
    - ``normalize="rater"``: z-score every rating with its rater's mean/sd first (removes
      rater offsets and scale use), then average per item.
    - ``normalize="item"``: average the raw ratings per item (one target per item).
    - ``normalize="none"``: every individual rating is its own target row.
* ``bradley_terry`` (pairwise): J = -E[log sigma(R(chosen) - R(rejected))]; the score scale
  is the BT logit.

A saved scorer directory holds the backbone and its tokenizer (``encoder/``), ``head.safetensors`` and
``scorer.json`` (objective, normalisation, target mean/sd, score range, metrics), so
:meth:`Scorer.score` returns numbers on the raters' scale with no other context. Beside them, the same
folder is a plain transformers model with a README.md model card (:mod:`condtune.scorer_export`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from condtune.artifacts import (
    ArtifactError,
    ArtifactMissing,
    check_model_dir,
    check_model_ref,
    check_safetensors,
    loading,
    read_json_object,
)
from condtune.config import check_ranges
from condtune.io import atomic_dir, write_json
from condtune.metrics import mae, pairwise_accuracy, pearson, spearman, split_half_reliability
from condtune.modeling import autocast, device
from condtune.ratings import text_of
from condtune.scorer_export import HF_FILES, check_not_foreign, write_hf_files

log = logging.getLogger(__name__)

SCORER_META = "scorer.json"
HEAD_FILE = "head.safetensors"
OLD_HEAD_FILE = "head.pt"
SCORER_FILES = ("encoder", HEAD_FILE, OLD_HEAD_FILE, SCORER_META, "metrics.json", *HF_FILES)
"""what a scorer folder holds (`condtune scorer train` adds metrics.json; an older condtune wrote head.pt)"""


# ----------------------------------------------------------------------------- losses (pure)


def regression_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) mean squared error."""
    err = (pred.float() - target.float()) ** 2
    if weight is None:
        return err.mean()
    return (err * weight).sum() / weight.sum().clamp_min(1e-8)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """-mean log sigma(r+ - r-): the Bradley-Terry negative log-likelihood of the preferences."""
    return -F.logsigmoid(r_chosen.float() - r_rejected.float()).mean()


def load_head(path: Path) -> dict:
    """The head's weights: safetensors (no code runs on load); a scorer saved by an older condtune
    has ``head.pt``, read with ``weights_only=True`` (tensors only, never pickled objects). A missing,
    truncated or damaged head is an :class:`~condtune.artifacts.ArtifactError` naming the file."""
    head = check_head(path)
    with loading(head, "scorer head"):
        if head.name == HEAD_FILE:
            return load_file(str(head))
        return torch.load(head, map_location="cpu", weights_only=True)


def check_head(path: Path) -> Path:
    """The scorer's head file, present and (safetensors) complete."""
    if (path / HEAD_FILE).exists():
        check_safetensors(path / HEAD_FILE)
        return path / HEAD_FILE
    if (path / OLD_HEAD_FILE).exists():
        return path / OLD_HEAD_FILE
    raise ArtifactMissing(path, f"scorer head missing (no {HEAD_FILE})")


class ScorerModel(nn.Module):
    """Encoder + masked mean pooling + Linear(hidden, 1)."""

    def __init__(self, backbone: str | Path):
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(str(backbone))
        self.head = nn.Linear(self.encoder.config.hidden_size, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(pooled).squeeze(-1)


@dataclass
class ScorerMeta:
    """What a saved scorer knows about its own scale."""

    backbone: str
    objective: str
    normalize: str
    target_mean: float = 0.0
    target_sd: float = 1.0
    score_min: float | None = None
    score_max: float | None = None
    max_length: int = 128
    metrics: dict | None = None
    trained_on: str | None = None
    uses_prompt: bool = False
    """True when trained on prompt + completion; score_pairs then reads the prompt too."""

    @classmethod
    def read(cls, path: Path) -> ScorerMeta:
        """The card ``path`` (a scorer's scorer.json), checked: a missing key, an unknown one or a
        value of the wrong kind is an :class:`~condtune.artifacts.ArtifactError` naming the file."""
        d = read_json_object(path, "scorer card")
        names = [f.name for f in fields(cls)]
        missing = [k for k in ("backbone", "objective", "normalize") if k not in d]
        unknown = sorted(set(d) - set(names))
        if missing or unknown:
            raise ArtifactError(path, f"not a complete scorer card (missing keys {missing}, unknown keys {unknown})")
        numbers = {"target_mean": False, "target_sd": False, "score_min": True, "score_max": True}
        for key, nullable in numbers.items():
            v = d.get(key, 0.0)
            if not (v is None and nullable) and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            ):
                raise ArtifactError(path, f"{key} must be a finite number, got {v!r}")
        if d.get("target_sd", 1.0) <= 0:
            raise ArtifactError(path, f"target_sd must be > 0, got {d['target_sd']!r}")
        if not isinstance(d.get("max_length", 128), int) or d.get("max_length", 128) < 1:
            raise ArtifactError(path, f"max_length must be a positive integer, got {d['max_length']!r}")
        return cls(**d)


class Scorer:
    """A trained scorer: ``Scorer.load(dir).score(texts)`` -> numbers on the raters' scale."""

    def __init__(self, model: ScorerModel, tokenizer, meta: ScorerMeta):
        self.model, self.tokenizer, self.meta = model, tokenizer, meta
        self.calls = 0  # texts scored so far (the benchmark's "scorer calls")

    @classmethod
    def new(cls, backbone: str, objective: str, normalize: str, *, max_length: int = 128) -> Scorer:
        from transformers import AutoTokenizer

        path = check_model_ref(backbone)  # a missing or damaged backbone folder: an error naming it
        with loading(path, "scorer backbone"):
            model, tokenizer = ScorerModel(path), AutoTokenizer.from_pretrained(path)
        return cls(model.to(device()), tokenizer, ScorerMeta(backbone, objective, normalize, max_length=max_length))

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        from transformers import AutoTokenizer

        path = Path(path)
        if not (path / SCORER_META).exists():
            raise ArtifactMissing(
                path, f"not a condtune scorer (no {SCORER_META}); train one with `condtune scorer train`"
            )
        meta = ScorerMeta.read(path / SCORER_META)
        check_head(path)  # every file checked before the (slow) encoder loads
        check_model_dir(path / "encoder", "scorer encoder")  # its tokenizer too: no placeholder vocabulary
        with loading(path / "encoder", "scorer encoder"):
            model = ScorerModel(path / "encoder")
            tokenizer = AutoTokenizer.from_pretrained(path / "encoder")
        with loading(path, "scorer head"):
            model.head.load_state_dict(load_head(path))
        model.eval()
        return cls(model.to(device()), tokenizer, meta)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the scorer to the folder ``path`` (its transformers view too). A folder there that holds
        anything a scorer does not (:data:`SCORER_FILES`), or a README.md or config.json no scorer wrote, is
        left as it was, with a :class:`FileExistsError`, unless ``overwrite``."""
        with atomic_dir(path, replaces=None if overwrite else SCORER_FILES) as tmp:
            self.model.encoder.save_pretrained(tmp / "encoder")
            self.tokenizer.save_pretrained(tmp / "encoder")
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.model.head.state_dict().items()},
                str(tmp / HEAD_FILE),
            )
            write_json(tmp / SCORER_META, asdict(self.meta))
            write_hf_files(tmp, self.model, self.tokenizer, self.meta, shown_as=str(path))
            if not overwrite:
                check_not_foreign(path, tmp)
        return Path(path)

    def encode(self, texts: Sequence[str]) -> dict:
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.meta.max_length, return_tensors="pt"
        )

    def raw(self, texts: Sequence[str]) -> torch.Tensor:
        """Head outputs (standardised scale), with gradients; for training. On the model's device (a GPU
        when there is one: :meth:`new` and :meth:`load` put the model on :func:`condtune.modeling.device`)."""
        enc = self.encode(texts)
        dev = next(self.model.parameters()).device
        with autocast():
            return self.model(enc["input_ids"].to(dev), enc["attention_mask"].to(dev)).float()

    def to_scale(self, raw: np.ndarray | torch.Tensor):
        return raw * self.meta.target_sd + self.meta.target_mean

    @torch.no_grad()
    def score(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Scores on the raters' scale (BT logits for a pairwise scorer)."""
        self.model.eval()
        texts = list(texts)
        order = np.argsort([len(t) for t in texts])  # length-sorted batches pad less
        out = np.empty(len(texts), dtype=np.float64)
        for start in tqdm(range(0, len(texts), batch_size), desc="scoring", disable=not progress, leave=False):
            idx = order[start : start + batch_size]
            out[idx] = self.raw([texts[i] for i in idx]).cpu().numpy()
        self.calls += len(texts)
        return self.to_scale(out)

    def score_pairs(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> np.ndarray:
        if not self.meta.uses_prompt:
            return self.score(list(completions), **kw)
        return self.score([text_of(p, c) for p, c in zip(prompts, completions)], **kw)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class OptimConfig:
    num_train_epochs: float = 3.0
    """passes over the training items (fractions allowed)"""
    per_device_train_batch_size: int = 32
    """texts (or pairs) per step"""
    learning_rate: float = 5e-5
    """peak learning rate (linear warmup, linear decay)"""
    warmup_ratio: float = 0.06
    """fraction of steps spent warming up"""
    weight_decay: float = 0.01
    """AdamW weight decay"""

    def __post_init__(self):
        checks = {
            "num_train_epochs": self.num_train_epochs > 0,
            "per_device_train_batch_size": self.per_device_train_batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "weight_decay": self.weight_decay >= 0,
        }
        check_ranges(
            self,
            checks,
            "num_train_epochs > 0, per_device_train_batch_size >= 1, learning_rate > 0, 0 <= warmup_ratio < 1, "
            "weight_decay >= 0",
        )


def _schedule(opt: torch.optim.Optimizer, total: int, warmup: float) -> torch.optim.lr_scheduler.LambdaLR:
    w = max(1, int(total * warmup))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / w, max(0.0, (total - s) / max(1, total - w))))


def _batches(n: int, batch_size: int, epochs: float, *, rng: np.random.Generator, lengths: Sequence[int] | None = None):
    """Shuffled index batches; with ``lengths``, batches are formed from similar lengths
    (sorted within pools of 50 batches, pools and batches still shuffled) to cut padding."""
    total = int(math.ceil(n * epochs / batch_size))
    order = np.concatenate([rng.permutation(n) for _ in range(int(math.ceil(epochs)) + 1)])[: total * batch_size]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if lengths is not None:
        lengths = np.asarray(lengths)
        pool = 50 * batch_size
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            group = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            batches += [group[j] for j in rng.permutation(len(group))]
    yield from batches[:total]


def fit_regression(
    scorer: Scorer, targets: pd.DataFrame, opt_cfg: OptimConfig, *, seed: int = 0, desc: str = "scorer"
) -> list[float]:
    """Fine-tune on ``text, target, weight`` rows; sets the scorer's target mean/sd."""
    scorer.meta.target_mean = float(np.average(targets["target"], weights=targets["weight"]))
    scorer.meta.target_sd = (
        float(np.sqrt(np.average((targets["target"] - scorer.meta.target_mean) ** 2, weights=targets["weight"]))) or 1.0
    )
    z = ((targets["target"] - scorer.meta.target_mean) / scorer.meta.target_sd).to_numpy(np.float32)
    w = targets["weight"].to_numpy(np.float32)
    texts = targets["text"].tolist()

    def loss_fn(idx):
        pred = scorer.raw([texts[i] for i in idx])
        return regression_loss(pred, torch.from_numpy(z[idx]).to(pred.device), torch.from_numpy(w[idx]).to(pred.device))

    return _train_loop(scorer, len(texts), loss_fn, cfg=opt_cfg, seed=seed, desc=desc, lengths=[len(t) for t in texts])


def fit_pairwise(
    scorer: Scorer, pairs: pd.DataFrame, opt_cfg: OptimConfig, *, seed: int = 0, desc: str = "scorer"
) -> list[float]:
    """Fine-tune with the Bradley-Terry loss on ``prompt, chosen, rejected`` rows."""
    chosen = [text_of(p, c) for p, c in zip(pairs["prompt"], pairs["chosen"])]
    rejected = [text_of(p, r) for p, r in zip(pairs["prompt"], pairs["rejected"])]

    def loss_fn(idx):
        r = scorer.raw([chosen[i] for i in idx] + [rejected[i] for i in idx])
        return bradley_terry_loss(r[: len(idx)], r[len(idx) :])

    return _train_loop(scorer, len(chosen), loss_fn, cfg=opt_cfg, seed=seed, desc=desc)


def _train_loop(
    scorer: Scorer, n: int, loss_fn, *, cfg: OptimConfig, seed: int, desc: str, lengths: Sequence[int] | None = None
) -> list[float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    total = int(math.ceil(n * cfg.num_train_epochs / cfg.per_device_train_batch_size))
    opt = torch.optim.AdamW(scorer.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, total, cfg.warmup_ratio)
    scorer.model.train()
    losses = []
    bar = tqdm(
        _batches(n, cfg.per_device_train_batch_size, cfg.num_train_epochs, rng=rng, lengths=lengths),
        total=total,
        desc=desc,
        unit="step",
    )
    for idx in bar:
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(scorer.model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    scorer.model.eval()
    return losses


# ----------------------------------------------------------------------------- evaluation


def evaluate_items(scorer: Scorer, items: pd.DataFrame) -> dict:
    """Held-out agreement with the human mean, plus the human split-half ceiling of these items."""
    pred = scorer.score(items["text"].tolist(), progress=True)
    truth = items["mean"].to_numpy(float)
    out = {
        "n_items": int(len(items)),
        "pearson": pearson(pred, truth),
        "spearman": spearman(pred, truth),
        "mae": mae(pred, truth),
        "pairwise_accuracy": pairwise_accuracy(pred, truth),
    }
    if "scores" in items and items["scores"].map(len).max() >= 2:
        ceiling = split_half_reliability(items["scores"].tolist())
        out.update({f"human_{k}": v for k, v in ceiling.items()})
    return out


def evaluate_pairs(scorer: Scorer, pairs: pd.DataFrame) -> dict:
    rc = scorer.score_pairs(pairs["prompt"], pairs["chosen"])
    rr = scorer.score_pairs(pairs["prompt"], pairs["rejected"])
    return {"n_pairs": int(len(pairs)), "pairwise_accuracy": float(np.mean(rc > rr))}
