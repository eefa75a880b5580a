"""Checkpoints with their cumulative cost: what a trainer hands the benchmark (and any caller).

Every ``train_<method>`` returns a list of :class:`Checkpoint`. A checkpoint is either a
policy directory (``path``) or, for best-of-n, a file of already-picked samples
(``samples``). The cost fields are cumulative from the start of the method, data generation
included (relabel scoring, rollouts, best-of-n samples).
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from condtune.config import ConfigError
from condtune.io import atomic_dir, read_json, write_json


@dataclass
class Checkpoint:
    method: str
    """method name (conditional, ppo, rloo, dpo, best_of_n)"""
    setting: str = "default"
    """which run of the method's sweep (its overrides, e.g. 'kl_coef=0.02')"""
    name: str = ""
    """checkpoint label, unique within (method, setting, seed): e.g. step_40, n_16"""
    step: int = 0
    """optimizer steps / updates so far (for best-of-n: n)"""
    wall_clock_s: float = 0.0
    """cumulative seconds spent by the method up to here, data generation included"""
    generated_tokens: int = 0
    """tokens sampled from a policy so far (rollouts, best-of-n candidates)"""
    scorer_calls: int = 0
    """texts scored by the proxy scorer so far"""
    path: str | None = None
    """policy directory (a plain transformers model, or a condtune conditional policy)"""
    samples: str | None = None
    """best-of-n: JSONL of picked samples (prompt, text, n_tokens) instead of a policy"""
    conditional: bool = False
    """True for a score-conditioned policy (evaluated at every requested target)"""
    extra: dict = field(default_factory=dict)
    """method-specific notes (e.g. best-of-n's analytic KL)"""


def save_checkpoints(path: str | Path, ckpts: list[Checkpoint]) -> None:
    write_json(path, [asdict(c) for c in ckpts])


def load_checkpoints(path: str | Path) -> list[Checkpoint] | None:
    path = Path(path)
    return [Checkpoint(**d) for d in read_json(path)] if path.exists() else None


def changed_keys(old: dict, new: dict) -> list[str]:
    """The top-level keys whose values differ between two recorded settings (either side may lack one)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def claim_settings(out_dir: str | Path, settings: dict, job: str) -> None:
    """Record a command's ``settings`` in ``out_dir/config.json`` on its first run; a rerun with the
    same settings resumes there, one with other settings is an error (it would resume or reuse
    another run's checkpoints, snapshots or samples)."""
    path = Path(out_dir) / "config.json"
    if path.exists() and (old := read_json(path)) != settings:
        changed = changed_keys(old, settings)
        raise ConfigError(
            f"{out_dir} holds a {job} run with other settings (changed: {changed}); use another out=, "
            f"or delete {out_dir} to redo it"
        )
    write_json(path, settings)


def snapshot_callback(
    method: str,
    out_dir: Path,
    steps: list[int],
    counters: Callable[[], dict] | None = None,
    base_seconds: float = 0.0,
    setting: str = "default",
    on_save: Callable[[Path], None] | None = None,
    conditional: bool = False,
):
    """A transformers ``TrainerCallback`` that saves the model (and tokenizer) to
    ``out_dir/step_N`` at each step in ``steps`` of one run (one learning-rate schedule) and records
    a :class:`Checkpoint` with the training seconds so far (saving excluded) plus ``counters()``
    (generated tokens, scorer calls). A LoRA model is saved merged; ``on_save(dir)`` adds files
    (a conditional policy's card).

    Snapshots already on disk (a resumed run) are kept, and their last wall-clock is the offset
    for the resumed run's time.
    """
    from transformers import TrainerCallback

    class Snapshot(TrainerCallback):
        def __init__(self):
            self.records: list[Checkpoint] = load_checkpoints(out_dir / "snapshots.json") or []
            self.offset = self.records[-1].wall_clock_s if self.records else base_seconds
            self.t0, self.paused = time.perf_counter(), 0.0

        def on_step_end(self, args, state, control, model=None, processing_class=None, **kw):
            step = state.global_step
            if step not in steps or any(c.step == step for c in self.records):
                return
            t_save = time.perf_counter()
            seconds = self.offset + (t_save - self.t0 - self.paused)
            target = out_dir / f"step_{step}"
            with atomic_dir(target) as tmp:
                merged = copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else model
                merged.save_pretrained(tmp)
                if processing_class is not None:
                    processing_class.save_pretrained(tmp)
                if on_save is not None:
                    on_save(tmp)
            extra = counters() if counters else {}
            self.records.append(
                Checkpoint(
                    method, setting, f"step_{step}", step, seconds, path=str(target), conditional=conditional, **extra
                )
            )
            save_checkpoints(out_dir / "snapshots.json", self.records)
            self.paused += time.perf_counter() - t_save

    return Snapshot()


def prune(work: Path, ckpts: list[Checkpoint], keep_final: bool) -> None:
    """Free the disk once a run's checkpoints are evaluated: trainer state (optimizer, scheduler,
    resume checkpoints) always goes; snapshot weights go too, except the final one when
    ``keep_final``. The samples and results that a report needs live elsewhere."""
    for sub in ("checkpoints", "run"):
        shutil.rmtree(work / sub, ignore_errors=True)
    for trainer_state in [d for d in work.rglob("checkpoints") if d.is_dir()]:  # e.g. each online round's
        shutil.rmtree(trainer_state, ignore_errors=True)
    final = max((c.step for c in ckpts), default=None)
    for c in ckpts:
        if c.path and not (keep_final and c.step == final):
            shutil.rmtree(c.path, ignore_errors=True)
