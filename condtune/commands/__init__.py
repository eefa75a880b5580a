"""The commands: one module each, with a ``main(argv)`` and a config dataclass, listed in :data:`COMMANDS`.

``condtune <name> --help``, the CLI's dispatch and the test that parses every packaged config all read
this one registry. A command module is imported only when its command runs (most import torch).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

KEPT_DEFAULT = "every output is written whole or not at all, so nothing half-written was kept; rerun the same command"


@dataclass(frozen=True)
class Command:
    name: str
    """what a user types after ``condtune``"""
    module: str
    """the module under condtune.commands holding ``main`` and the config class"""
    config: str
    """the config dataclass's name in that module"""
    summary: str
    """one line for ``condtune --help``"""
    kept: str = KEPT_DEFAULT
    """what an interrupted run keeps, and how to go on"""

    def load(self) -> ModuleType:
        return importlib.import_module(f"condtune.commands.{self.module}")

    def config_class(self) -> type:
        return getattr(self.load(), self.config)

    def main(self) -> Callable[[list[str]], int | None]:
        return self.load().main


_RESUME = "complete checkpoints stay in {}/checkpoints; rerun the same command to resume from the last one"

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command(
            "quickstart",
            "quickstart",
            "QuickstartConfig",
            "the whole chain on the embedded defaults",
            "finished stages stay in output_dir/; rerun the same command to go on from them",
        ),
        Command("fetch", "fetch", "FetchConfig", "fetch and cache the embedded model, scorer backbone and ratings"),
        Command(
            "scorer train",
            "scorer_train",
            "ScorerTrainConfig",
            "train a scorer from ratings or preference pairs",
        ),
        Command("scorer eval", "scorer_eval", "ScorerEvalConfig", "evaluate a saved scorer on a ratings file"),
        Command(
            "relabel",
            "relabel",
            "RelabelConfig",
            "tag a dataset with quantised scorer bins (and column tags)",
            "with stream=true the complete shards stay in output_dir/ and the same command resumes after them; "
            "without it nothing was written",
        ),
        Command(
            "train",
            "train",
            "TrainConfig",
            "conditional SFT: tags before the answer, loss on the answer",
            _RESUME.format("output_dir"),
        ),
        Command("generate", "generate", "GenerateConfig", "generate at a requested score / tags"),
        Command("ppo", "ppo", "PPOConfig", "PPO baseline with a KL-penalised reward", _RESUME.format("output_dir")),
        Command(
            "dpo",
            "dpo",
            "DPOJobConfig",
            "DPO baseline (trl) on preference pairs, or pairs built from ratings",
            _RESUME.format("output_dir"),
        ),
        Command(
            "rloo",
            "rloo",
            "RLOOJobConfig",
            "RLOO baseline (trl) against a scorer, KL to the base through beta",
            _RESUME.format("output_dir"),
        ),
        Command(
            "best-of-n",
            "best_of_n",
            "BestOfNJobConfig",
            "best-of-n baseline: n samples per prompt, the scorer keeps the best",
        ),
        Command(
            "bench",
            "bench",
            "BenchConfig",
            "comparative benchmark: conditional SFT vs PPO, DPO, RLOO, best-of-n",
            "every finished result stays in output_dir/results.jsonl; rerun the same command to resume",
        ),
        Command("sample", "sample", "SampleConfig", "sample n completions per prompt into a rating task file"),
        Command("rate", "rate", "RateConfig", "serve the local rating page; --export writes ratings files"),
    ]
}
"""every command, in the order ``condtune --help`` lists them"""
