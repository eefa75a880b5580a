"""DPO (trl) on preference pairs built from pointwise human ratings.

Pairs: two rated texts of the same prompt whose mean ratings differ by at least
``min_margin``; the higher-rated one is ``chosen``. trl rebuilds the reference model from
``model.config._name_or_path``, so the base policy must be a directory (the benchmark saves
it once). Snapshots of the policy are taken at ``checkpoints`` steps with their cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from condtune.checkpointing import Checkpoint, check_checkpoints, latest_checkpoint, snapshot_callback
from condtune.config import check_ranges
from condtune.modeling import load_causal_lm
from condtune.trl_compat import trainer_args


@dataclass
class DPOSettings:
    beta: float = 0.1
    """DPO temperature (strength of the implicit KL to the reference)"""
    learning_rate: float = 5e-6
    """peak learning rate"""
    per_device_train_batch_size: int = 8
    """pairs per step"""
    max_length: int = 96
    """tokens per prompt + completion"""
    max_train_samples: int = 2000
    """pairs sampled from the ratings"""
    min_margin: float = 1.0
    """least difference of mean ratings between chosen and rejected"""
    checkpoints: list[int] = field(default_factory=lambda: [25, 50, 100])
    """optimizer steps at which the policy is snapshotted (the last is the run's length)"""

    def __post_init__(self):
        checks = {
            "beta": self.beta > 0,
            "learning_rate": self.learning_rate > 0,
            "per_device_train_batch_size": self.per_device_train_batch_size >= 1,
            "max_length": self.max_length >= 2,
            "max_train_samples": self.max_train_samples >= 1,
            "min_margin": self.min_margin >= 0,
        }
        check_ranges(
            self,
            checks,
            "beta, learning_rate > 0; per_device_train_batch_size, max_train_samples >= 1; max_length >= 2; "
            "min_margin >= 0",
        )
        check_checkpoints(self.checkpoints)


def build_pairs(items: pd.DataFrame, n_pairs: int, min_margin: float, *, seed: int = 0) -> pd.DataFrame:
    """``prompt, chosen, rejected`` from ``prompt, completion, score`` rows (same prompt only)."""
    rng = np.random.default_rng(seed)
    rows = []
    for prompt, grp in items.groupby("prompt", sort=False):
        text, score = grp["completion"].to_numpy(), grp["score"].to_numpy(float)
        if len(grp) < 2:
            continue
        want = int(round(n_pairs * len(grp) / len(items)))
        for _ in range(want * 20):
            if want <= 0:
                break
            i, j = rng.integers(0, len(grp), 2)
            if abs(score[i] - score[j]) >= min_margin and text[i] != text[j]:
                hi, lo = (i, j) if score[i] > score[j] else (j, i)
                rows.append({"prompt": prompt, "chosen": text[hi], "rejected": text[lo]})
                want -= 1
    if not rows:
        raise ValueError(f"no pairs with a rating margin >= {min_margin}; lower min_margin")
    return pd.DataFrame(rows)


def _space(t: str) -> str:
    return t if t.startswith((" ", "\n")) else " " + t


def train_dpo(
    model_dir: str | Path,
    pairs: pd.DataFrame,
    s: DPOSettings,
    *,
    out_dir: str | Path,
    seed: int = 0,
    setting: str = "default",
    report_to: str = "none",
) -> list[Checkpoint]:
    """Full fine-tune with trl's DPOTrainer; resumes from its latest checkpoint in ``out_dir``."""
    import datasets
    from trl import DPOConfig, DPOTrainer

    out = Path(out_dir)
    model, tok = load_causal_lm(model_dir)
    ds = datasets.Dataset.from_dict(
        {
            "prompt": pairs["prompt"].tolist(),
            "chosen": [_space(c) for c in pairs["chosen"]],
            "rejected": [_space(r) for r in pairs["rejected"]],
        }
    )
    steps = sorted(s.checkpoints)
    args = trainer_args(
        DPOConfig,
        output_dir=str(out / "checkpoints"),
        report_to=report_to,
        run_name=out.name,
        max_steps=steps[-1],
        per_device_train_batch_size=s.per_device_train_batch_size,
        learning_rate=s.learning_rate,
        beta=s.beta,
        max_length=s.max_length,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=max(1, steps[-1] // 20),
        logging_steps=max(1, steps[-1] // 10),
        save_steps=steps[0],
        save_total_limit=1,
        seed=seed,
        disable_tqdm=False,
        dataset_num_proc=None,
    )
    snap = snapshot_callback("dpo", out, steps, setting=setting)
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[snap])
    resume = latest_checkpoint(out)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return [c for c in snap.records if c.step in steps]
