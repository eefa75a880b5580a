"""KL-regularised conditional SFT (Quark's objective, Lu et al. 2022):

    loss = NLL(y | tags, x) + kl_coef * KL(pi(. | tags, x, y<t) || pi_ref(. | x, y<t)) - entropy_coef * H(pi)

each term a mean over the answer tokens of the batch; optionally plus ``tag_contrast`` times the
tag-contrast term (:func:`tag_contrast_loss`, GeDi's discriminative loss, Krause et al. 2020), and
``pairwise`` times a ranking term on the top-against-bottom contrast (:func:`pairwise_contrast_loss`)
over pairs of answers to one prompt (a :class:`PairBank`, drawn per step beside the batch).
The KL is exact over the vocabulary (:func:`condtune.kl.token_kl`, the same per-token KL the
benchmark reports) and the reference reads the prompt *without* tags, so the term pulls the tagged
policy towards what the base model would write for the plain prompt: the tags may move the
distribution only as far as the data is worth. The reference's logits come without grad, once per
batch.

:class:`ConditionalSFTTrainer` is trl's SFTTrainer with this loss; its rows carry the reference's
own ``ref_input_ids``/``ref_labels`` (the plain prompt and the same answer tokens) and, for the
contrast, ``alt_input_ids``/``alt_labels`` (the same answer under another bin's tag), padded by
:class:`PairedCollator` (the trainer's args keep them: ``remove_unused_columns=False``). The pairs of
the ranking term are not rows of the dataset: the bank draws them by the step number, so a resumed
run sees the pairs it would have seen.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from trl import SFTTrainer

from condtune.kl import token_kl


class KLLoss(NamedTuple):
    loss: torch.Tensor
    nll: torch.Tensor
    kl: torch.Tensor
    entropy: torch.Tensor


def answer_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The [N, V] logits that predict the N answer tokens of a batch (labels != -100), in row
    order, and those tokens."""
    keep = labels[:, 1:] != -100
    return logits[:, :-1][keep], labels[:, 1:][keep]


def kl_regularised_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    ref_logits: torch.Tensor,
    ref_labels: torch.Tensor,
    kl_coef: float,
    entropy_coef: float = 0.0,
) -> KLLoss:
    """The objective above from the policy's and the reference's [B, L, V] logits over their own
    inputs (which differ by the tags); ``labels``/``ref_labels`` mark the same answer tokens."""
    pol, targets = answer_logits(logits.float(), labels)
    ref, ref_targets = answer_logits(ref_logits.float(), ref_labels)
    if pol.shape[0] != ref.shape[0] or not torch.equal(targets, ref_targets):
        raise ValueError(f"policy and reference rows mark different answer tokens ({pol.shape[0]} vs {ref.shape[0]})")
    logp = F.log_softmax(pol, -1)
    nll = -logp.gather(-1, targets[:, None]).squeeze(-1).mean()
    kl = token_kl(logp, F.log_softmax(ref, -1)).mean()
    entropy = -(logp.exp() * logp).sum(-1).mean()
    return KLLoss(
        loss=nll + kl_coef * kl - entropy_coef * entropy, nll=nll.detach(), kl=kl.detach(), entropy=entropy.detach()
    )


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B] log-likelihood of each row's answer tokens (labels != -100) under [B, L, V] logits."""
    mask = labels[:, 1:] != -100
    logp = F.log_softmax(logits[:, :-1].float(), -1)
    tok = logp.gather(-1, labels[:, 1:].clamp(min=0)[..., None]).squeeze(-1)
    return (tok * mask).sum(-1)


def tag_contrast_loss(
    own: torch.Tensor, other: torch.Tensor, weight: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """GeDi's discriminative term for a pair of tags: the answer's [B] log-likelihoods under its own
    tag and under another bin's tag are the logits of a two-way Bayes classifier of the tag (uniform
    prior), and the loss is its cross-entropy, -log sigmoid(own - other), averaged over the rows with
    ``weight`` (0 for rows trained without their tag). The answer's own likelihood, the same under
    both tags, cancels: only what the tag says is trained. ``target`` (default 1: the own tag) is the
    probability the label gives the own tag (:func:`soft_contrast_labels`)."""
    d = own - other
    target = torch.ones_like(d) if target is None else target.to(d)
    per_row = F.binary_cross_entropy_with_logits(d, target, reduction="none")
    return (per_row * weight).sum() / weight.sum().clamp(min=1.0)


def soft_contrast_labels(score, own_center, other_center, temperature: float) -> np.ndarray:
    """The tag contrast's soft label of each row: the probability that its answer belongs to its own
    bin rather than the other, sigmoid((c_own - c_other) * (z - (c_own + c_other) / 2) / T) for the
    row's score z and the two bins' centres c; a logistic model whose log-odds grow with how far z
    sits on the own bin's side of the midpoint. T -> 0 gives GeDi's hard label (1 for a score on the
    own side); a larger T gives softer labels, so answers of one bin get ranked by their scores too."""
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: soft labels need T > 0 (T = 0 is the hard label)")
    z, c_own, c_other = (np.asarray(v, dtype=float) for v in (score, own_center, other_center))
    return 1.0 / (1.0 + np.exp(-(c_own - c_other) * (z - (c_own + c_other) / 2) / temperature))


def within_prompt_pairs(scores, groups, margin: float, *, max_per_answer: int = 64, seed: int = 0) -> np.ndarray:
    """[P, 2] row indices (better, worse) of every two answers to one prompt (same ``groups`` value)
    whose ``scores`` differ by more than ``margin``: the pairs of the ranking term. Across prompts
    nothing is paired, so what the prompt does to the score does not enter. A prompt with more than
    ``max_per_answer`` answers (thousands of texts under one prompt) gets ``max_per_answer`` random
    partners an answer (drawn with ``seed``) instead of all n^2 pairs."""
    scores, groups = np.asarray(scores, dtype=float), np.asarray(groups)
    if margin < 0:
        raise ValueError(f"margin={margin}: use a score gap >= 0")
    rng = np.random.default_rng(seed)
    out = []
    for idx in pd.Series(groups).groupby(groups, sort=False).indices.values():  # one pass, in order of appearance
        if len(idx) <= max_per_answer:
            a, b = np.nonzero(scores[idx][:, None] - scores[idx][None, :] > margin)
        else:
            i = np.repeat(np.arange(len(idx)), max_per_answer)
            j = rng.integers(0, len(idx), len(i))
            gap = scores[idx][i] - scores[idx][j]
            keep = np.abs(gap) > margin
            a, b = np.where(gap > 0, i, j)[keep], np.where(gap > 0, j, i)[keep]
        out.append(np.stack([idx[a], idx[b]], axis=1))
    pairs = np.concatenate(out).astype(int) if out else np.zeros((0, 2), dtype=int)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def pairwise_contrast_loss(better: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss of the contrast as a reward: -log sigmoid(s(y+) - s(y-)) averaged over the
    pairs, with s(y) = log pi(y | top tag, x) - log pi(y | bottom tag, x) for the better and the worse
    answer to one prompt (DPO's loss with the bottom tag as the reference). It trains the contrast
    that anchored guidance against the mirrored tag multiplies to rank a prompt's answers as the
    scorer does; the answers' own likelihood cancels in s."""
    return -F.logsigmoid(better - worse).mean()


def pad_rows(rows: list[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """A batch of rows of ``input_ids`` and ``labels``, as trl's SFT collator pads them: each padded on
    the right (``pad_token_id``, -100 in the labels), with an ``attention_mask`` of 1 on the tokens."""
    ids = [torch.tensor(r["input_ids"]) for r in rows]
    labels = [torch.tensor(r["labels"]) for r in rows]
    return {
        "input_ids": pad_sequence(ids, batch_first=True, padding_value=pad_token_id),
        "labels": pad_sequence(labels, batch_first=True, padding_value=-100),
        "attention_mask": pad_sequence([torch.ones_like(t) for t in ids], batch_first=True, padding_value=0),
    }


@dataclass
class PairBank:
    """Tokenised answers, each under the top and the bottom bin's tag, and their within-prompt pairs
    (:func:`within_prompt_pairs`); :meth:`batch` draws ``n`` pairs for one step."""

    top: list[list[int]]
    """each answer's context under the top bin's tag (tags + prompt)"""
    bottom: list[list[int]]
    """the same under the bottom bin's tag"""
    answers: list[list[int]]
    """the answers' tokens"""
    pairs: np.ndarray
    """[P, 2] (better, worse) answer indices"""
    pad_token_id: int

    def batch(self, step: int, n: int, *, seed) -> dict[str, torch.Tensor]:
        """``n`` pairs (without replacement while there are as many), drawn from ``seed`` (an int or a
        list of ints) and ``step``, as 4n padded rows: the better answers under the top tag, then
        under the bottom tag, then the worse answers under the top and the bottom tag."""
        if len(self.pairs) == 0:
            raise ValueError("the pair bank holds no pairs")
        rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), step])
        picked = self.pairs[rng.choice(len(self.pairs), n, replace=n > len(self.pairs))]
        rows = [
            {"input_ids": ctx[i] + self.answers[i], "labels": [-100] * len(ctx[i]) + self.answers[i]}
            for ctx, col in ((self.top, 0), (self.bottom, 0), (self.top, 1), (self.bottom, 1))
            for i in picked[:, col]
        ]
        return pad_rows(rows, self.pad_token_id)


@dataclass
class PairedCollator:
    """Pads the policy's rows as trl does (:func:`pad_rows`), and the reference's and the contrast's rows
    beside them; it reads the columns it knows and drops any other."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = pad_rows(examples, self.pad_token_id)
        for side in ("ref", "alt"):
            if f"{side}_input_ids" in examples[0]:
                rows = pad_rows(
                    [{"input_ids": e[f"{side}_input_ids"], "labels": e[f"{side}_labels"]} for e in examples],
                    self.pad_token_id,
                )
                out[f"{side}_input_ids"], out[f"{side}_labels"] = rows["input_ids"], rows["labels"]
                out[f"{side}_attention_mask"] = rows["attention_mask"]
        for col in ("alt_weight", "alt_target"):
            if col in examples[0]:
                out[col] = torch.tensor([float(e[col]) for e in examples])
        return out


class ConditionalSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is :func:`kl_regularised_loss` against a frozen ``ref_model`` (or the plain
    NLL without one), plus ``tag_contrast`` times :func:`tag_contrast_loss`, plus ``pairwise`` times
    :func:`pairwise_contrast_loss` on ``pairs_per_step`` pairs a step from ``pair_bank`` (drawn with
    ``pair_seed`` and the step).

    It uses trl's and transformers' public extension points only, and overrides ``__init__``,
    ``compute_loss`` and ``log`` (which adds the loss terms, averaged since the last log, to the logs).
    Its rows' extra columns reach :class:`PairedCollator` because its args say
    ``remove_unused_columns=False``; other args are an error."""

    def __init__(
        self,
        *args,
        ref_model=None,
        kl_coef: float = 0.0,
        entropy_coef: float = 0.0,
        tag_contrast: float = 0.0,
        pairwise: float = 0.0,
        pair_bank: PairBank | None = None,
        pairs_per_step: int = 8,
        pair_seed: int = 0,
        **kw,
    ):
        super().__init__(*args, **kw)
        if self.args.remove_unused_columns:
            raise ValueError(
                "ConditionalSFTTrainer reads the rows' reference and contrast columns: its args need "
                "remove_unused_columns=False"
            )
        if pairwise > 0 and pair_bank is None:
            raise ValueError("the pairwise term (pairwise > 0) needs a pair_bank")
        self.pairwise, self.pair_bank, self.pairs_per_step = pairwise, pair_bank, pairs_per_step
        self.pair_seed = [pair_seed, self.accelerator.process_index]  # each process draws its own pairs
        if ref_model is not None:
            ref_model = ref_model.eval().requires_grad_(False).to(self.accelerator.device)
        self.ref_model, self.kl_coef, self.entropy_coef, self.tag_contrast = (
            ref_model,
            kl_coef,
            entropy_coef,
            tag_contrast,
        )
        self.loss_terms: dict[str, defaultdict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        """each term's value at each step since the last log, by mode"""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        metrics = {}
        if self.ref_model is not None:
            with torch.no_grad():
                ref = self.ref_model(
                    input_ids=inputs["ref_input_ids"], attention_mask=inputs["ref_attention_mask"], use_cache=False
                )
            r = kl_regularised_loss(
                out.logits,
                inputs["labels"],
                ref_logits=ref.logits,
                ref_labels=inputs["ref_labels"],
                kl_coef=self.kl_coef,
                entropy_coef=self.entropy_coef,
            )
            loss, metrics = r.loss, {"nll": r.nll, "kl": r.kl, "entropy": r.entropy}
        else:
            pol, targets = answer_logits(out.logits.float(), inputs["labels"])
            loss = F.cross_entropy(pol, targets)
            metrics["nll"] = loss.detach()
        if self.tag_contrast > 0:
            alt = model(input_ids=inputs["alt_input_ids"], attention_mask=inputs["alt_attention_mask"], use_cache=False)
            own_lp = sequence_logprob(out.logits, inputs["labels"])
            other_lp = sequence_logprob(alt.logits, inputs["alt_labels"])
            contrast = tag_contrast_loss(own_lp, other_lp, inputs["alt_weight"].to(own_lp.device), inputs["alt_target"])
            loss = loss + self.tag_contrast * contrast
            metrics["tag_contrast"] = contrast.detach()
        if self.pairwise > 0:
            rows = self.pair_bank.batch(self.state.global_step, self.pairs_per_step, seed=self.pair_seed)
            rows = {k: v.to(out.logits.device) for k, v in rows.items()}
            pair_out = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"], use_cache=False)
            top_b, bottom_b, top_w, bottom_w = sequence_logprob(pair_out.logits, rows["labels"]).chunk(4)
            better, worse = top_b - bottom_b, top_w - bottom_w
            ranking = pairwise_contrast_loss(better, worse)
            loss = loss + self.pairwise * ranking
            metrics["pairwise"] = ranking.detach()
            metrics["pair_accuracy"] = (better > worse).float().mean()
        mode = "train" if model.training else "eval"
        for name, value in metrics.items():
            self.loss_terms[mode][name].append(float(value))
        return (loss, out) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """``logs`` with each loss term's mean since the last log (``eval_`` before its name in evaluation)."""
        mode = "train" if self.model.training else "eval"
        terms = {name: sum(values) / len(values) for name, values in self.loss_terms[mode].items()}
        logs.update({f"eval_{name}": v for name, v in terms.items()} if mode == "eval" else terms)
        super().log(logs, start_time)
        self.loss_terms[mode].clear()
