"""A condtune scorer as a plain transformers model.

Every saved scorer folder holds a copy of this file as ``modeling_condtune_scorer.py`` (``config.json``
names it in ``auto_map``), so that, with transformers alone::

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    scores = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits[:, 0]

gives the scores of ``condtune.scorer.Scorer.load(folder).score(texts)``, on the raters' scale: the
encoder, masked mean pooling over its last hidden states, and a one-output linear head whose weights
already hold the scorer's de-normalisation (``w * target_sd``, ``b * target_sd + target_mean``).

The model *is* the scorer's encoder class with the head added (not a wrapper holding it), so its weight
names are the encoder's own: the folder's weight index points at ``encoder/model.safetensors`` for the
encoder and at ``score.safetensors`` for the head, and the encoder's weights are stored once.

This file imports torch and transformers only, never condtune. The copy in a folder names that
scorer's encoder and config classes in ``ENCODER`` and ``ENCODER_CONFIG`` (written by ``Scorer.save``).
"""

from __future__ import annotations

import torch
import transformers
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

ENCODER = "BertModel"
ENCODER_CONFIG = "BertConfig"

MODEL_TYPE = "condtune_scorer"


class CondtuneScorerConfig(getattr(transformers, ENCODER_CONFIG)):
    """The encoder's config, under its own model type (so nothing loads this folder as a plain encoder
    with a different head by mistake)."""

    model_type = MODEL_TYPE


class CondtuneScorerForSequenceClassification(getattr(transformers, ENCODER)):
    """Encoder + masked mean pooling + ``Linear(hidden, 1)``: ``logits[:, 0]`` is the score on the
    raters' scale (a regression output: no sigmoid, no softmax)."""

    config_class = CondtuneScorerConfig

    def __init__(self, config):
        super().__init__(config)
        self.score = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape[:2], dtype=torch.long, device=input_ids.device)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = super().forward(**inputs)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.score(pooled)
        loss = None
        if labels is not None:
            loss = nn.functional.mse_loss(logits[:, 0].float(), labels.float().view(-1))
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return SequenceClassifierOutput(loss=loss, logits=logits)
