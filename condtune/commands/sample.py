"""Sample n completions per prompt into a rating task file (for `condtune rate`).

    condtune sample --config sample
    condtune sample --model smollm2-135m --prompts prompts.txt -n 4 --out runs/rating/tasks.jsonl
    condtune sample --model runs/policy --prompts prompts.txt -n 4 --out runs/rating/tasks.jsonl --append

Writes ``output_path`` (one row per completion: item_id, prompt, completion, model, sample_index) and
``<out>.card.json`` (model, sampling settings, n, seed, score scale). ``--append`` adds another
model's completions to an existing task, so raters compare models head to head.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from condtune import config as C
from condtune.artifacts import check_model_ref
from condtune.errors import DataError
from condtune.modeling import load_causal_lm, processes
from condtune.outputs import claim_output
from condtune.prompts import load_prompts
from condtune.rate.task import (
    TaskError,
    TaskItem,
    card_path,
    card_scale,
    load_card,
    load_task,
    make_item_id,
    write_task,
)
from condtune.sampling import Samples, SamplingConfig, gather_samples, sample

log = logging.getLogger("condtune.sample")


@dataclass
class SampleConfig:
    model: str = "smollm2-135m"
    """model to sample from: an embedded default name, an HF id or a local directory"""
    prompts: Path = Path("prompts.txt")
    """prompts: .txt (one per line, \\n for a newline) or .jsonl/.json with a 'prompt' (or 'text') field"""
    num_return_sequences: int = 4
    """completions per prompt"""
    output_path: Path = Path("runs/rating/tasks.jsonl")
    """task file to write (its card goes beside it as <name>.card.json)"""
    append: bool = False
    """add to an existing task file instead of replacing it (e.g. a second model)"""
    max_prompts: int = 0
    """use only the first this many prompts (0 = all)"""
    seed: int = 0
    """sampling seed"""
    scale_min: int = -4
    """lowest score raters can give (recorded in the card; `condtune rate` uses it)"""
    scale_max: int = 4
    """highest score raters can give"""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """generation settings: max_new_tokens, temperature, top_p, batch_size, repetition_penalty"""


def main(argv: list[str]) -> int:
    cfg = C.parse(SampleConfig, argv, aliases={"-n": "num_return_sequences", "-o": "output_path"})
    check(cfg)
    claim_output(cfg, "output_path", job="sample", argv=argv, folder=False, what="a task file (.jsonl)")
    check_model_ref(cfg.model)  # before sampling: a missing or damaged model folder names itself
    try:
        prompts, old, card = load_inputs(cfg)
    except (TaskError, DataError) as exc:
        print(f"condtune sample: error: {exc}", file=sys.stderr)
        return 2
    procs = plan(cfg, prompts)
    samples, elapsed = draw(cfg, prompts, procs)
    if not procs.is_main_process:
        return 0
    new, empty, items = merge_items(cfg, prompts, samples, old)
    run = run_record(cfg, prompts, samples, n_items=len(new), empty=empty, seconds=elapsed)
    task_path, card_file = write_task(cfg.output_path, items, task_card(cfg, card, run, items))
    print(f"wrote {len(new)} completions ({len(items)} in the task) to {task_path} and its card {card_file}")
    print(f"  {samples.total_tokens} tokens in {elapsed:.1f}s; {empty} empty completions left out (nothing to rate)")
    print(f"next: condtune rate {task_path}")
    return 0


def check(cfg: SampleConfig) -> None:
    """Settings errors before anything is claimed or loaded, each naming the setting."""
    n = cfg.num_return_sequences
    if n < 1:
        raise C.ConfigError(f"num_return_sequences={n}: ask for at least 1 completion per prompt")
    if cfg.scale_min >= cfg.scale_max:
        raise C.ConfigError(f"scale_min={cfg.scale_min} scale_max={cfg.scale_max}: need scale_min < scale_max")
    if cfg.max_prompts < 0:
        raise C.ConfigError(f"max_prompts={cfg.max_prompts}: use 0 (all prompts) or a positive count")


def load_inputs(cfg: SampleConfig) -> tuple[list[str], list[TaskItem], dict]:
    """The prompts, and with --append the task's items so far and its card (whose scale must be
    this one); a TaskError or DataError names what is wrong."""
    prompts = load_prompts(cfg.prompts)[: cfg.max_prompts or None]
    old = load_task(cfg.output_path) if cfg.append and cfg.output_path.exists() else []
    card = load_card(cfg.output_path) if old else {}
    if card and card_scale(card) != (cfg.scale_min, cfg.scale_max):
        raise TaskError(card_path(cfg.output_path), f"appending needs the same scale as the task: {card_scale(card)}")
    return prompts, old, card


def plan(cfg: SampleConfig, prompts: list[str]):
    """The processes of this job (each samples every N-th prompt), the plan logged."""
    log.info(
        "sampling %d prompts x %d = %d completions from %s",
        len(prompts),
        cfg.num_return_sequences,
        len(prompts) * cfg.num_return_sequences,
        cfg.model,
    )
    procs = processes()  # `accelerate launch -m condtune sample`: each process samples every N-th prompt
    if procs.num_processes > 1:
        log.info(
            "sample: process %d of %d takes prompts %d, %d + %d, ...",
            procs.process_index + 1,
            procs.num_processes,
            procs.process_index,
            procs.process_index,
            procs.num_processes,
        )
    return procs


def draw(cfg: SampleConfig, prompts: list[str], procs) -> tuple[Samples, float]:
    """Every process's share of the completions, gathered in prompt order; the seconds it took."""
    model, tok = load_causal_lm(cfg.model)
    t0 = time.time()
    mine = prompts[procs.process_index :: procs.num_processes]
    part = sample(
        model,
        tok,
        mine,
        n=cfg.num_return_sequences,
        cfg=cfg.sampling,
        seed=cfg.seed + procs.process_index,
        desc="sampling for rating",
    )
    samples = gather_samples(part, procs)
    return samples, time.time() - t0


def merge_items(
    cfg: SampleConfig, prompts: list[str], samples: Samples, old: list[TaskItem]
) -> tuple[list[TaskItem], int, list[TaskItem]]:
    """The new completions as task items (empty ones left out: nothing to rate), how many were empty,
    and the task's items: the old ones, then the new ones it does not hold yet."""
    sampled = [
        TaskItem(
            item_id=make_item_id(cfg.model, p, sample_index=j, completion=text),
            prompt=p,
            completion=text,
            model=cfg.model,
            sample_index=j,
        )
        for p, texts in zip(prompts, samples.texts)
        for j, text in enumerate(texts)
    ]
    new = [it for it in sampled if it.completion.strip()]  # an empty completion has nothing to rate
    seen = {it.item_id for it in old}
    return new, len(sampled) - len(new), old + [it for it in new if it.item_id not in seen]


def run_record(
    cfg: SampleConfig, prompts: list[str], samples: Samples, *, n_items: int, empty: int, seconds: float
) -> dict:
    """This run's entry in the card's runs."""
    return {
        "model": cfg.model,
        "prompts": str(cfg.prompts),
        "n_prompts": len(prompts),
        "n": cfg.num_return_sequences,
        "seed": cfg.seed,
        "sampling": C.to_dict(cfg.sampling),
        "n_items": n_items,
        "empty_left_out": empty,
        "generated_tokens": samples.total_tokens,
        "seconds": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def task_card(cfg: SampleConfig, card: dict, run: dict, items: list[TaskItem]) -> dict:
    """The task's card: its scale, the runs so far and this one, the models and the item count."""
    return {
        "scale": {"min": cfg.scale_min, "max": cfg.scale_max},
        "runs": card.get("runs", []) + [run],
        "models": sorted({it.model for it in items}),
        "n_items": len(items),
    }
