"""Experiment tracking, off by default: ``report_to=tensorboard`` or ``wandb``.

The trl trainers (conditional SFT, DPO, RLOO) log through transformers' own ``report_to``
integrations; condtune's PPO loop logs the same way through :class:`Tracker`. TensorBoard event
files go under the run's output folder (``tensorboard --logdir <out>``); Weights & Biases runs
are named after the output folder and take the project from ``WANDB_PROJECT``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPORT_TO = ("none", "tensorboard", "wandb")
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_report_to(value: str) -> str:
    """``value`` if it names a tracker whose package is installed; a ValueError naming the fix otherwise."""
    if value not in REPORT_TO:
        raise ValueError(f"report_to={value!r}: use one of {', '.join(REPORT_TO)}")
    package = _PACKAGE.get(value)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(f"report_to={value}: the {package} package is not installed (pip install {package})")
    return value


class Tracker:
    """Scalar metrics of a hand-written loop (PPO) to the tracker ``report_to`` names; a no-op for 'none'."""

    def __init__(self, report_to: str, out_dir: str | Path, config: dict | None = None):
        self.kind = check_report_to(report_to)
        self._writer = self._run = None
        if self.kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))
        elif self.kind == "wandb":
            import wandb

            self._run = wandb.init(name=Path(out_dir).name, dir=str(out_dir), config=config or {}, resume="allow")

    def log(self, metrics: dict, step: int) -> None:
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(k, v, step)
            self._writer.flush()
        if self._run is not None:
            self._run.log(scalars, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._run is not None:
            self._run.finish()
