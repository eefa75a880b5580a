"""Settings that were renamed to the names Hugging Face ``TrainingArguments``, trl and ``generate`` use.

An old key in a config file or on the command line is refused with its new name (never silently
accepted, never silently dropped); a run recorded under old keys still resumes, because
:func:`upgrade_record` reads its record in the new names.
"""

from __future__ import annotations

from typing import Any, Iterable

RENAMED: dict[str, tuple[str, ...]] = {
    "out": ("output_dir", "output_path"),
    "export_dir": ("output_dir",),
    "lr": ("learning_rate",),
    "batch_size": ("per_device_train_batch_size",),
    "lr_schedule": ("lr_scheduler_type",),
    "epochs": ("num_train_epochs",),
    "warmup": ("warmup_ratio",),
    "save_every": ("save_steps",),
    "keep_checkpoints": ("save_total_limit",),
    "total_updates": ("max_steps",),
    "n": ("num_return_sequences",),
    "k": ("num_bins",),
    "max_examples": ("max_train_samples",),
    "max_items": ("max_train_samples",),
    "max_train_items": ("max_train_samples",),
    "n_pairs": ("max_train_samples",),
    "scorer_items": ("scorer_max_train_samples",),
    "guidance": ("guidance_scale",),
}
"""old key: its new name; where one old key became different names in different configs, the one the
config has is meant (``out`` is ``output_dir`` for a folder, ``output_path`` for a file)"""

REPLACED: dict[tuple[str, str], str] = {
    ("PPOConfig", "resume"): "resume was replaced by overwrite, the same setting as every other command's: "
    "resume=false is overwrite=true, and resume=true (the default) is overwrite=false",
    ("OptimConfig", "seed"): "optim.seed was removed: a run has one seed, the top-level seed",
}
"""(config class, old key): what to write instead, for keys that were not simply renamed"""


def new_name(old: str, fields: Iterable[str]) -> str | None:
    """The new name of ``old`` among a config's ``fields``, or None when ``old`` was never renamed to one."""
    fields = set(fields)
    return next((n for n in RENAMED.get(old, ()) if n in fields), None)


def advice(cls_name: str, old: str, fields: Iterable[str]) -> str | None:
    """One line saying what an unknown key ``old`` of config ``cls_name`` is called now, or None."""
    if (cls_name, old) in REPLACED:
        return REPLACED[cls_name, old]
    new = new_name(old, fields)
    return f"{old} was renamed to {new}; write {new}" if new else None


def upgrade_record(old: Any, new: Any) -> Any:
    """A recorded run identity ``old`` (nested dicts as written to run.json) read in today's names,
    guided by today's identity ``new``: at each level, a key that today's identity lacks and whose new
    name it has takes that name. Everything else is kept as it was, so a real change still shows."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return old
    out = {}
    for key, value in old.items():
        name = key if key in new else (new_name(key, new) or key)
        if name in old and name != key:  # both spellings recorded: keep them apart
            name = key
        out[name] = upgrade_record(value, new.get(name))
    return out
