"""Best-of-n baseline: sample n completions per prompt, keep the one the scorer rates highest.

    condtune best-of-n --config best_of_n
    condtune best-of-n scorer=runs/scorer prompts=docs/rating_prompts.txt n=16 output_dir=runs/best_of_n
    condtune best-of-n model=runs/rloo/step_40 scorer=runs/scorer n=1 output_dir=runs/rloo/samples  # samples, scored

No training: one pool of n samples per prompt from ``model``, scored once by ``scorer``
(``output_dir/pool.jsonl``), and the best of each prompt's n (``output_dir/picks_n<N>.jsonl``: prompt, text,
n_tokens, proxy = the scorer's score). Rerunning the same command reuses the pool.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from condtune import config as C
from condtune.baselines.best_of_n import BestOfNSettings, train_best_of_n
from condtune.checkpointing import CHECKPOINTS, RUN_RECORD, Checkpoint
from condtune.commands.scorer_runs import claim_scorer_run
from condtune.io import write_json
from condtune.modeling import load_causal_lm
from condtune.outputs import claim_output
from condtune.sampling import MAX_PER_PROMPT, SamplingConfig, sample
from condtune.scorer import Scorer
from condtune.tables import read_table

log = logging.getLogger("condtune.best_of_n")


@dataclass
class BestOfNJobConfig:
    model: str = "smollm2-135m"
    """policy to sample from (embedded-default name, HF id or local dir)"""
    scorer: str = "runs/scorer"
    """scorer directory (`condtune scorer train`) that picks the best sample"""
    prompts: str = ""
    """prompts file (one per line, or .jsonl/.json records with a prompt field); empty = built-in review openings"""
    n: int = 8
    """samples per prompt; the pick is the highest-scoring (n=1: plain samples, scored)"""
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=24))
    """how the samples are drawn"""
    seed: int = 0
    """sampling seed"""
    output_dir: str = "runs/best_of_n"
    """output folder: picks_n<N>.jsonl, pool.jsonl (every sample, scored), summary.json"""
    overwrite: bool = False
    """start afresh in an output_dir that holds another run (other inputs or settings), or files of another kind"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(BestOfNJobConfig, argv)
    check(cfg)
    out = claim_output(
        cfg,
        "output_dir",
        job="best-of-n",
        argv=argv,
        what="a best-of-n run",
        marks=(RUN_RECORD, CHECKPOINTS),
        overwrite=cfg.overwrite,
    )
    prompts, scorer = load_inputs(cfg, out)
    picked = pick(cfg, out, prompts, scorer)
    summary, n_picks = save(cfg, out, prompts, picked)
    report(cfg, out, summary, n_picks)
    return 0


def check(cfg: BestOfNJobConfig) -> None:
    """n within its bounds, before anything is claimed or loaded."""
    if cfg.n < 1:
        raise C.ConfigError(f"n={cfg.n}: ask for at least 1 sample per prompt")
    if cfg.n > MAX_PER_PROMPT:
        raise C.ConfigError(f"n={cfg.n}: asks for {cfg.n} samples per prompt; at most {MAX_PER_PROMPT}")


def load_inputs(cfg: BestOfNJobConfig, out: Path) -> tuple[list[str], Scorer]:
    """The prompts and the scorer, and the run claimed for what the inputs hold."""
    return claim_scorer_run(cfg, out, "best-of-n", ("pool.json", "pool.jsonl", "summary.json"))


def pick(cfg: BestOfNJobConfig, out: Path, prompts: list[str], scorer: Scorer) -> Checkpoint:
    """The policy and its sampler (flat, prompt-major, as the pool wants); "training": the pool sampled,
    scored once, and the best of each prompt's n picked."""
    model, tok = load_causal_lm(cfg.model)
    log.info("best-of-n: %d prompts x %d samples of %s, scorer=%s", len(prompts), cfg.n, cfg.model, cfg.scorer)

    def sample_fn(ps: list[str], n: int) -> tuple[list[str], list[int]]:
        s = sample(model, tok, ps, n=n, cfg=cfg.sampling, seed=cfg.seed, desc="best-of-n pool")
        return [t for row in s.texts for t in row], [c for row in s.n_tokens for c in row]

    (picked,) = train_best_of_n(
        prompts, BestOfNSettings(ns=[cfg.n]), sample_fn=sample_fn, score_fn=scorer.score_pairs, out_dir=out
    )
    return picked


def save(cfg: BestOfNJobConfig, out: Path, prompts: list[str], picked: Checkpoint) -> tuple[dict, int]:
    """The run's summary (summary.json) beside the picks; how many picks there are."""
    picks, pool = read_table(picked.samples), read_table(out / "pool.jsonl")
    summary = {
        "picks": picked.samples,
        "n": cfg.n,
        "prompts": len(prompts),
        "mean_score_of_samples": float(pool["proxy"].mean()),
        "mean_score_of_picks": float(picks["proxy"].mean()),
        "generated_tokens": picked.generated_tokens,
        "scorer_calls": picked.scorer_calls,
        "seconds": round(picked.wall_clock_s, 1),
    }
    write_json(out / "summary.json", summary)
    return summary, len(picks)


def report(cfg: BestOfNJobConfig, out: Path, summary: dict, n_picks: int) -> None:
    """The summary, where the picks and the pool are, and what to run next."""
    print(json.dumps(summary, indent=2))
    print(
        f"{n_picks} picks (prompt, text, n_tokens, proxy = the score) in {summary['picks']}; "
        f"every sample in {out / 'pool.jsonl'}"
    )
    print(f"next: condtune rloo model={cfg.model} scorer={cfg.scorer}  # a policy toward the scorer, 1 sample/answer")


if __name__ == "__main__":
    sys.exit(main())
