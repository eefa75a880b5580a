"""PPO's settings: :class:`PPOConfig` (YAML + command line, ``condtune ppo``).

One line per field docstring: ``condtune.config.help_text`` shows only that line in ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from condtune.modeling import LORA_ATTENTION
from condtune.tracking import check_report_to


@dataclass
class PPOConfig:
    model: str = "smollm2-135m"
    """base policy (embedded-default name, HF id or local dir); also the frozen reference"""
    scorer: str = ""
    """scorer directory whose score is the reward; empty means use the built-in `reward`"""
    reward: str = "lowercase"
    """built-in reward when no scorer is given (smoke runs): lowercase | brevity"""
    prompts: str = ""
    """prompt file (.txt one per line, or .jsonl/.json with a `prompt` or `text` field); empty = built-in review prefixes"""
    output_dir: str = "runs/ppo"
    """where checkpoints, metrics.jsonl and the final policy go"""
    seed: int = 0
    """seed for prompt order, sampling and minibatch shuffling"""
    max_steps: int = 100
    """PPO updates (one rollout each)"""
    per_device_train_batch_size: int = 16
    """sequences per rollout"""
    mini_batch_size: int = 8
    """sequences per gradient step"""
    ppo_epochs: int = 4
    """passes over each rollout"""
    max_new_tokens: int = 24
    """response length limit"""
    temperature: float = 1.0
    """sampling temperature (log-probs are computed at the same temperature)"""
    top_p: float = 1.0
    """nucleus sampling mass (1.0 keeps the sampler and the log-probs consistent)"""
    learning_rate: float = 3e-6
    """learning rate of the policy (LoRA adapters or all weights); tune it with kl_coef"""
    value_head_lr: float = 1e-4
    """learning rate of the freshly initialised value head"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    max_grad_norm: float = 1.0
    """gradient-norm clip"""
    gamma: float = 1.0
    """discount"""
    lam: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """policy ratio clip"""
    value_clip_eps: float = 0.2
    """value clip around the rollout-time values"""
    vf_coef: float = 0.1
    """value loss weight"""
    kl_coef: float = 0.05
    """beta in R_hat = R - beta * log(pi/pi_ref) (initial value when adaptive)"""
    adaptive_kl: bool = False
    """adapt beta toward `target_kl` (Ziegler et al. 2019) instead of keeping it fixed"""
    target_kl: float = 6.0
    """target sequence-level KL (nats) for the adaptive controller"""
    kl_horizon: int = 10000
    """adaptive controller horizon, in sequences"""
    whiten_rewards: bool = False
    """whiten the per-token rewards of each rollout (scale only, the mean is kept)"""
    whiten_advantages: bool = True
    """whiten advantages of each rollout"""
    missing_eos_penalty: float | None = None
    """subtracted from the score of a response that hits max_new_tokens without EOS"""
    length_penalty: float = 0.0
    """subtracted from the score per response token"""
    lora_r: int = 0
    """LoRA rank; 0 = full fine-tune"""
    lora_alpha: int = 32
    """LoRA alpha"""
    lora_target_modules: list[str] = field(default_factory=lambda: list(LORA_ATTENTION))
    """modules that get LoRA adapters (with lora_r > 0)"""
    bf16: bool | None = None
    """bf16 autocast (default: on when the CPU/GPU supports it)"""
    threads: int = 0
    """torch CPU threads (0 = torch default)"""
    report_to: str = "none"
    """log each update's metrics: none | tensorboard (under output_dir/tensorboard) | wandb"""
    save_steps: int = 10
    """checkpoint every this many updates (and at the end)"""
    save_total_limit: int = 1
    """checkpoints kept on disk (the newest ones)"""
    overwrite: bool = False
    """start afresh in an output_dir that holds a run (its checkpoints, metrics and final policy are removed); by default a rerun resumes from the latest checkpoint"""
    sample_every: int = 10
    """print a table of sample completions every this many updates (0 = never)"""
    progress: bool = True
    """tqdm progress bar with an ETA"""

    def __post_init__(self) -> None:
        check_report_to(self.report_to)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for PPO sampling, got {self.temperature}")
        if self.per_device_train_batch_size % self.mini_batch_size:
            raise ValueError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of mini_batch_size ({self.mini_batch_size})"
            )


def uses_lora(cfg: PPOConfig) -> bool:
    return cfg.lora_r > 0
