"""PPO's models: the actor-critic (the policy LM with a value head on its own last hidden
state, so no second model runs forward or backward) and the frozen reference, built fresh or
loaded from a checkpoint. The reference is a frozen copy of the initial policy, or with LoRA
the same base with the adapters disabled."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from condtune.baselines.ppo_config import PPOConfig, uses_lora
from condtune.modeling import device, load_causal_lm, lora_config


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generate() uses them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


class ActorCritic(nn.Module):
    """The policy LM plus a scalar value head on its last hidden state."""

    def __init__(self, lm: nn.Module, value_head: nn.Linear | None = None):
        super().__init__()
        self.lm = lm
        hidden = lm.config.hidden_size
        if value_head is None:
            value_head = nn.Linear(hidden, 1)  # zero init: V = 0, so early advantages are the
            nn.init.zeros_(value_head.weight)  # rewards themselves rather than value-head noise
            nn.init.zeros_(value_head.bias)
        self.value_head = value_head

    def forward(self, query_responses, attention_mask, *, context_length: int, temperature: float = 1.0):
        """(logits / temperature, values) at the positions that predict each response token."""
        out = self.lm(
            input_ids=query_responses,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            output_hidden_states=True,
            logits_to_keep=query_responses.shape[1] - context_length + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1].float() / temperature
        hidden = out.hidden_states[-1][:, context_length - 1 : -1]
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        return logits, values


def lm_logits(lm: nn.Module, query_responses, attention_mask, *, context_length: int, temperature: float = 1.0):
    """A plain LM's (the reference's) logits / temperature at the positions that predict each response token."""
    out = lm(
        input_ids=query_responses,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        logits_to_keep=query_responses.shape[1] - context_length + 1,
        use_cache=False,
    )
    return out.logits[:, :-1].float() / temperature


def build_models(cfg: PPOConfig, checkpoint: Path | None = None):
    """(actor_critic, reference or None, tokenizer). With LoRA the reference is the base with
    the adapters disabled (None here); otherwise a frozen copy of the base. With ``checkpoint``
    the policy weights (or adapters) come from its ``policy`` directory."""
    base, tok = load_causal_lm(cfg.model)
    base.generation_config.pad_token_id = tok.pad_token_id
    if uses_lora(cfg):
        from peft import PeftModel, get_peft_model

        if checkpoint is not None:
            lm = PeftModel.from_pretrained(base, checkpoint / "policy", is_trainable=True)
        else:
            lm = get_peft_model(base, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_target_modules))
        ref = None
    else:
        ref = base.requires_grad_(False).eval()
        if checkpoint is not None:
            from transformers import AutoModelForCausalLM

            lm = AutoModelForCausalLM.from_pretrained(checkpoint / "policy", dtype=torch.float32)
        else:
            lm = copy.deepcopy(base)
        lm.requires_grad_(True)
    actor = ActorCritic(lm).to(device())
    actor.eval()  # no dropout: rollout and update log-probs must agree
    return actor, (ref.to(device()) if ref is not None else None), tok
