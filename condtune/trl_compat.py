"""The one place condtune touches trl/transformers trainer configs, whose names churn
(``tokenizer`` -> ``processing_class``, ``gradient_checkpointing`` -> ``activation_checkpointing``,
``bf16=True`` defaults that fail on CPU). Everything else calls :func:`trainer_args`.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import torch

from condtune.modeling import cpu_supports_bf16

log = logging.getLogger(__name__)


def precision_kwargs() -> dict:
    """bf16 where the hardware has it (CUDA, or a CPU with AVX512-BF16/AMX), else fp32."""
    if torch.cuda.is_available():
        return {"bf16": torch.cuda.is_bf16_supported(), "fp16": False}
    return {"bf16": cpu_supports_bf16(), "fp16": False, "use_cpu": True}


def trainer_args(config_cls, **kwargs):
    """Build a trl/transformers config with CPU-safe defaults; unknown keys are dropped with a warning.

    Defaults: no activation checkpointing (slower, and pointless at these sizes), bf16 only where
    supported, no reporting integrations, no dataloader workers.
    """
    fields = {f.name for f in dataclasses.fields(config_cls)}
    base = {
        "report_to": "none",
        "dataloader_num_workers": 0,
        "save_only_model": False,
        **precision_kwargs(),
    }
    base["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = False
    base.update(kwargs)
    dropped = sorted(k for k in base if k not in fields)
    if dropped:
        log.warning("%s has no %s (trl/transformers version drift); ignoring", config_cls.__name__, dropped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return config_cls(**{k: v for k, v in base.items() if k in fields})
