"""Conditional SFT on a tagged dataset: the tags go before the answer, the loss is on the answer.

    condtune train --config configs/train.yaml
    condtune train data=runs/tagged.jsonl model=smollm2-135m out=runs/policy sft.max_steps=150

Resumes from the latest checkpoint in ``out/checkpoints`` if there is one. The saved policy
carries its tag vocabulary and bin edges (``out/condtune_policy.json``).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from condtune import config as C
from condtune.data import read_table, require_columns
from condtune.io import write_json
from condtune.modeling import load_causal_lm
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard

log = logging.getLogger("condtune.train")


@dataclass
class TrainConfig:
    data: str = "runs/tagged.jsonl"
    """a tagged dataset from `condtune relabel` (its .card.json must sit beside it)"""
    model: str = "smollm2-135m"
    """base policy: embedded default name, HF id or local dir"""
    max_examples: int = 0
    """use at most this many rows (0 = all)"""
    sft: SFTSettings = field(default_factory=SFTSettings)
    """optimisation settings"""
    out: str = "runs/policy"
    """output policy directory"""


def main(argv: list[str] | None = None) -> int:
    cfg = C.parse(TrainConfig, sys.argv[1:] if argv is None else argv)
    card = TagCard.load(cfg.data)
    df = read_table(cfg.data)
    require_columns(df, cfg.data, ["tagged_prompt", "completion"])
    if cfg.max_examples:
        df = df.sample(min(cfg.max_examples, len(df)), random_state=cfg.sft.seed)
    model, tokenizer = load_causal_lm(cfg.model)
    log.info("conditional SFT: %d rows, %d steps of %d (SmolLM2-135M on 2 CPU cores: ~3-4 s/step; the bar shows the ETA)", len(df), cfg.sft.max_steps, cfg.sft.batch_size)
    stats = train_conditional(model, tokenizer, df, card, cfg.sft, cfg.out, cfg.model)
    write_json(f"{cfg.out}/train_stats.json", {"stats": stats, "config": C.to_dict(cfg)})
    print(f"policy saved to {cfg.out}: {stats['steps']} steps in {stats['train_seconds']:.0f} s, loss {stats['first_loss']} -> {stats['final_loss']}")
    print(f"try: condtune generate --model {cfg.out} --score {card.binning.centers[-1]:.1f} --prompt '...' -n 4")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
