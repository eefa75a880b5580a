"""RLOO (trl) against the proxy scorer, with the KL to the reference through ``beta``.

REINFORCE with a leave-one-out baseline: ``num_generations`` completions per prompt, each
one's advantage is its reward minus the mean reward of the others. trl rebuilds the
reference model from ``model.config._name_or_path``, so the base policy must be a directory.
Snapshots at ``checkpoints`` steps carry the wall-clock, generated tokens and scorer calls so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from condtune.checkpointing import Checkpoint, check_checkpoints, latest_checkpoint, snapshot_callback
from condtune.config import check_ranges
from condtune.modeling import load_causal_lm
from condtune.sampling import SamplingConfig
from condtune.trl_compat import trainer_args


@dataclass
class RLOOSettings:
    beta: float = 0.05
    """KL coefficient to the reference (0 = no reference model)"""
    learning_rate: float = 1e-5
    """learning rate"""
    num_generations: int = 4
    """completions per prompt (the leave-one-out group)"""
    per_device_train_batch_size: int = 16
    """completions per optimizer step (a multiple of num_generations)"""
    checkpoints: list[int] = field(default_factory=lambda: [10, 20, 40])
    """optimizer steps at which the policy is snapshotted (the last is the run's length)"""

    def __post_init__(self):
        checks = {
            "beta": self.beta >= 0,
            "learning_rate": self.learning_rate > 0,
            "num_generations": self.num_generations >= 2,
            "per_device_train_batch_size": self.per_device_train_batch_size >= 1,
        }
        check_ranges(
            self,
            checks,
            "beta >= 0; learning_rate > 0; num_generations >= 2, a leave-one-out group; "
            "per_device_train_batch_size >= 1",
        )
        if self.per_device_train_batch_size % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size={self.per_device_train_batch_size} must be a multiple of "
                f"num_generations={self.num_generations} "
                "(whole leave-one-out groups per step)"
            )
        check_checkpoints(self.checkpoints)


class CountingReward:
    """trl reward function (prompts, completions, completion_ids) -> list[float] that counts
    the tokens it was shown and the scorer calls it made."""

    __name__ = "proxy"

    def __init__(self, score_fn: Callable[[list[str], list[str]], Sequence[float]]):
        self.score_fn, self.tokens, self.calls = score_fn, 0, 0

    def __call__(self, prompts, completions, completion_ids=None, **kw) -> list[float]:
        self.tokens += sum(len(c) for c in completion_ids) if completion_ids is not None else 0
        self.calls += len(completions)
        return [float(x) for x in self.score_fn(list(prompts), list(completions))]


def train_rloo(
    model_dir: str | Path,
    prompts: Sequence[str],
    score_fn: Callable,
    *,
    s: RLOOSettings,
    sampling: SamplingConfig,
    out_dir: str | Path,
    seed: int = 0,
    setting: str = "default",
    report_to: str = "none",
) -> list[Checkpoint]:
    """Full fine-tune with trl's RLOOTrainer on ``prompts``; resumes from its latest checkpoint."""
    import datasets
    from trl import RLOOConfig, RLOOTrainer

    out = Path(out_dir)
    model, tok = load_causal_lm(model_dir)
    steps = sorted(s.checkpoints)
    args = trainer_args(
        RLOOConfig,
        output_dir=str(out / "checkpoints"),
        report_to=report_to,
        run_name=out.name,
        max_steps=steps[-1],
        per_device_train_batch_size=s.per_device_train_batch_size,
        num_generations=s.num_generations,
        learning_rate=s.learning_rate,
        beta=s.beta,
        max_completion_length=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=0,
        logging_steps=max(1, steps[-1] // 10),
        save_steps=steps[0],
        save_total_limit=1,
        seed=seed,
        disable_tqdm=False,
        log_completions=False,
    )
    reward = CountingReward(score_fn)
    snap = snapshot_callback(
        "rloo",
        out,
        steps,
        counters=lambda: {"generated_tokens": reward.tokens, "scorer_calls": reward.calls},
        setting=setting,
    )
    if snap.records:  # resumed: the counters continue from the last snapshot
        reward.tokens, reward.calls = snap.records[-1].generated_tokens, snap.records[-1].scorer_calls
    ds = datasets.Dataset.from_dict({"prompt": list(prompts)})
    trainer = RLOOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok, callbacks=[snap]
    )
    resume = latest_checkpoint(out)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return [c for c in snap.records if c.step in steps]
