"""Checkpoints with their cumulative cost: what a trainer hands the benchmark (and any caller).

Every ``train_<method>`` returns a list of :class:`Checkpoint`. A checkpoint is either a
policy directory (``path``) or, for best-of-n, a file of already-picked samples
(``samples``). The cost fields are cumulative from the start of the method, data generation
included (relabel scoring, rollouts, best-of-n samples).

One resume scheme for every trainer (conditional SFT, the online loop, PPO, DPO, RLOO, best-of-n
and each run of the benchmark):

* ``out/run.json`` records what the run is (its data digest, card and settings):
  :func:`claim_run` writes it on the first run; a rerun with the same record resumes, one with
  another is an error that names what changed (or, with ``overwrite``, starts afresh there);
* resume state lives in ``out/checkpoints/checkpoint-N`` (trl's layout; PPO writes the same), and
  a checkpoint is complete once the file its trainer writes last exists; :func:`latest_checkpoint`
  resumes from the newest complete one and skips a half-written one, saying so;
* evaluation snapshots of one run (one learning-rate schedule) are ``out/step_N``
  (:func:`snapshot_callback`), listed with their cost in ``snapshots.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from condtune.config import ConfigError, defaults_dict, to_dict
from condtune.io import atomic_dir, read_json, write_json
from condtune.renames import upgrade_record

log = logging.getLogger(__name__)

RUN_RECORD = "run.json"
"""what a run is, in its output folder"""
CHECKPOINTS = "checkpoints"
"""resume checkpoints ``checkpoint-N`` of a run, in its output folder"""
_CKPT = re.compile(r"^checkpoint-(\d+)$")


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


def check_checkpoints(steps: list[int]) -> None:
    """Snapshot steps of a run (a settings check): at least one, each >= 1; the last is the run's length."""
    if not steps or min(steps) < 1:
        raise ValueError(f"checkpoints={list(steps)!r}: give the optimizer steps to snapshot at, each >= 1")


def save_checkpoints(path: str | Path, ckpts: list[Checkpoint]) -> None:
    write_json(path, [asdict(c) for c in ckpts])


def load_checkpoints(path: str | Path) -> list[Checkpoint] | None:
    path = Path(path)
    return [Checkpoint(**d) for d in read_json(path)] if path.exists() else None


def weights_digest(path: str | Path) -> str | None:
    """A digest of a policy folder's weights (its ``*.safetensors`` files, by name): equal for
    bit-identical weights; None for a folder without them."""
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()[:16]


def changed_keys(old: dict, new: dict) -> list[str]:
    """The top-level keys whose values differ between two recorded settings (either side may lack one)."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def with_later_defaults(old: dict, new: dict, defaults: dict) -> dict:
    """``old`` (a run's record) with the keys it lacks and ``new`` holds at their value in
    ``defaults``, at any depth: a setting added to condtune after the run was recorded, and left at
    its default, does not make it another run. A key the old record lacks and the new one sets
    otherwise stays missing, so it counts as changed."""
    filled = dict(old)
    for k, v in new.items():
        if k not in old:
            if k in defaults and defaults[k] == v:
                filled[k] = v
        elif isinstance(old[k], dict) and isinstance(v, dict) and isinstance(defaults.get(k), dict):
            filled[k] = with_later_defaults(old[k], v, defaults[k])
    return filled


NOT_THE_RUN = ("report_to", "overwrite")
"""settings that say where a run is logged, or whether it may replace another, not what it trains: never
part of its identity"""


def claim_run(
    out_dir: str | Path,
    identity: dict,
    job: str,
    *,
    overwrite: bool = False,
    outputs: tuple[str, ...] = (CHECKPOINTS,),
    hint: str = "use another output_dir=, or overwrite=true to start afresh there",
    defaults: dict | None = None,
) -> None:
    """Make ``out_dir`` this run's: record ``identity`` (what the run is: data digest, card,
    settings) in ``out_dir/run.json`` on its first run; a rerun with the same identity resumes there.
    A folder of another run (another identity, or ``outputs`` from a run that recorded none) is a
    :class:`ConfigError` naming what changed, unless ``overwrite``: then those ``outputs`` (files or
    folders, relative to ``out_dir``) are removed first. Top-level keys in :data:`NOT_THE_RUN`
    (where the run is logged) are left out of the record. ``defaults`` (the identity's values at
    their defaults, :func:`condtune.config.defaults_dict`) lets a run recorded before a setting
    existed resume while that setting stays at its default (:func:`with_later_defaults`); its record
    is kept as it was written."""
    out_dir = Path(out_dir)
    path = out_dir / RUN_RECORD
    identity = {k: v for k, v in identity.items() if k not in NOT_THE_RUN}
    identity = json.loads(json.dumps(identity))  # as it reads back from disk
    if path.exists():
        old = upgrade_record(read_json(path), identity)  # a run recorded under old setting names
        if old == identity or with_later_defaults(old, identity, defaults or {}) == identity:
            return
        why = f"holds another {job} run (changed: {changed_keys(old, identity)})"
    elif any((out_dir / o).exists() for o in outputs):
        why = f"holds a {job} run that recorded no {RUN_RECORD} (an older condtune)"
    else:
        why = ""
    if why:
        if not overwrite:
            raise ConfigError(f"{out_dir} {why}; resuming it would mix runs: {hint}")
        log.warning("%s %s: overwriting it", out_dir, why)
        for o in outputs:
            target = out_dir / o
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, identity)


def claim_command_run(
    out_dir: str | Path, cfg, job: str, contents: dict, *, overwrite: bool, outputs: tuple[str, ...]
) -> None:
    """:func:`claim_run` for a command: its identity is its settings (``cfg``) and ``contents``, digests of
    what its inputs hold, so a changed input is another run even under the same name. A run recorded
    before the digests existed resumes (it is known by its inputs' names only)."""
    identity, defaults = {**to_dict(cfg), **contents}, {**defaults_dict(cfg), **contents}
    claim_run(out_dir, identity, job, overwrite=overwrite, outputs=outputs, defaults=defaults)


def checkpoint_dirs(out_dir: str | Path, complete: str = "trainer_state.json") -> list[Path]:
    """The complete resume checkpoints ``out_dir/checkpoints/checkpoint-N`` (their file ``complete``,
    written last, exists), oldest first."""
    return [c for c in _all_checkpoints(out_dir) if (c / complete).exists()]


def latest_checkpoint(out_dir: str | Path, complete: str = "trainer_state.json") -> Path | None:
    """The newest complete resume checkpoint; a newer incomplete one (a run killed while saving) is
    skipped with a warning."""
    for c in reversed(_all_checkpoints(out_dir)):
        if (c / complete).exists():
            return c
        log.warning("%s is incomplete (killed while saving?); resuming from the one before", c)
    return None


def _all_checkpoints(out_dir: str | Path) -> list[Path]:
    found = [
        (int(m.group(1)), p) for p in (Path(out_dir) / CHECKPOINTS).glob("checkpoint-*") if (m := _CKPT.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def snapshot_callback(
    method: str,
    out_dir: Path,
    steps: list[int],
    *,
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
                    method=method,
                    setting=setting,
                    name=f"step_{step}",
                    step=step,
                    wall_clock_s=seconds,
                    path=str(target),
                    conditional=conditional,
                    **extra,
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
