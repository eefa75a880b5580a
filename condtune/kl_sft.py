"""KL-regularised conditional SFT (Quark's objective, Lu et al. 2022):

    loss = NLL(y | tags, x) + kl_coef * KL(pi(. | tags, x, y<t) || pi_ref(. | x, y<t)) - entropy_coef * H(pi)

each term a mean over the answer tokens of the batch. The KL is exact over the vocabulary
(:func:`condtune.kl.token_kl`, the same per-token KL the benchmark reports) and the reference reads
the prompt *without* tags, so the term pulls the tagged policy towards what the base model would
write for the plain prompt: the tags may move the distribution only as far as the data is worth.
The reference's logits come without grad, once per batch.

:class:`ConditionalSFTTrainer` is trl's SFTTrainer with this loss; its rows carry the reference's
own ``ref_input_ids``/``ref_labels`` (the plain prompt and the same answer tokens), padded by
:class:`PairedCollator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from condtune.kl import token_kl

REF_COLUMNS = ["ref_input_ids", "ref_labels"]


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
    return KLLoss(nll + kl_coef * kl - entropy_coef * entropy, nll.detach(), kl.detach(), entropy.detach())


@dataclass
class PairedCollator:
    """Pads the policy's rows as trl does, and the reference's rows beside them."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        pad = DataCollatorForLanguageModeling(pad_token_id=self.pad_token_id)
        out = pad([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])
        ref = pad([{"input_ids": e["ref_input_ids"], "labels": e["ref_labels"]} for e in examples])
        return {
            **out,
            "ref_input_ids": ref["input_ids"],
            "ref_attention_mask": ref["attention_mask"],
            "ref_labels": ref["labels"],
        }


class ConditionalSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is :func:`kl_regularised_loss` against a frozen ``ref_model``."""

    def __init__(self, *args, ref_model, kl_coef: float, entropy_coef: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.ref_model = ref_model.eval().requires_grad_(False).to(self.accelerator.device)
        self.kl_coef, self.entropy_coef = kl_coef, entropy_coef

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = [*self._signature_columns, *REF_COLUMNS]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        with torch.no_grad():
            ref = self.ref_model(
                input_ids=inputs["ref_input_ids"], attention_mask=inputs["ref_attention_mask"], use_cache=False
            )
        r = kl_regularised_loss(
            out.logits, inputs["labels"], ref.logits, inputs["ref_labels"], self.kl_coef, self.entropy_coef
        )
        mode = "train" if model.training else "eval"
        for name, value in (("nll", r.nll), ("kl", r.kl), ("entropy", r.entropy)):
            self._metrics[mode][name].append(float(value))
        return (r.loss, out) if return_outputs else r.loss
