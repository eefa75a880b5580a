"""Conditional SFT on a tagged dataset: the tags go before the answer, the loss is on the answer.

    condtune train --config train
    condtune train data=runs/tagged.jsonl model=smollm2-135m output_dir=runs/policy sft.max_steps=150
    condtune train --config train sft.kl_coef=0.3 online.rounds=3 scorer=runs/scorer

``sft.kl_coef`` adds the exact per-token KL to the base model (reading the prompt without tags);
``sft.condition_dropout`` trains a share of rows untagged (the unconditional branch of guidance).
``sft.pairwise`` adds a ranking term on the top-against-bottom tag contrast, over pairs of answers to
one prompt from ``pairs_data`` (e.g. the base model's samples from `condtune sample`, relabelled).
``online.rounds`` continues with rounds of sampling at the targets, scoring by ``scorer``,
refitting the bins over the pool and training on; the round table goes to ``output_dir/online/rounds.json``
and the final policy to ``output_dir/online/round_<R>/policy``.

Resumes from the latest checkpoint in ``output_dir/checkpoints`` if there is one. The saved policy
carries its tag vocabulary and bin edges (``output_dir/condtune_policy.json``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import pandas as pd

from condtune import config as C
from condtune.checkpointing import CHECKPOINTS, RUN_RECORD
from condtune.hub import push_policy
from condtune.io import write_json
from condtune.modeling import load_causal_lm, processes
from condtune.online import OnlineSettings, run_online
from condtune.outputs import claim_output, size_of
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard
from condtune.sampling import SamplingConfig
from condtune.saved_policy import POLICY_CARD
from condtune.scorer import Scorer
from condtune.sft_rows import scored_pairs
from condtune.tables import check_text, read_table, require_columns
from condtune.tracking import check_report_to

log = logging.getLogger("condtune.train")


@dataclass
class TrainConfig:
    data: str = "runs/tagged.jsonl"
    """a tagged dataset from `condtune relabel` (its .card.json must sit beside it)"""
    model: str = "smollm2-135m"
    """base policy: embedded default name, HF id or local dir"""
    max_train_samples: int = 0
    """use at most this many rows (0 = all)"""
    pairs_data: str = ""
    """with sft.pairwise > 0: a table of several answers a prompt (prompt, completion or completion_ids,
    score), e.g. `condtune sample` of the base model relabelled by the scorer; its pairs train the ranking term"""
    sft: SFTSettings = field(default_factory=lambda: SFTSettings(tag_contrast=1.0))
    """optimisation settings; by default the recommended recipe (the tag contrast, condition dropout 0.1)"""
    output_dir: str = "runs/policy"
    """output policy directory (rerunning the same command resumes there)"""
    overwrite: bool = False
    """start afresh in an output_dir that holds another run (other data, card, settings or base model)"""
    online: OnlineSettings = field(default_factory=OnlineSettings)
    """online rounds after the SFT (rounds=0: none)"""
    scorer: str = ""
    """the scorer (proxy) that rates each round's samples (needed with online.rounds > 0)"""
    online_prompts: int = 256
    """prompts per online round, drawn from the data's prompts as they occur (a prompt may repeat)"""
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=48))
    """how each online round samples"""
    report_to: str = "none"
    """log the SFT's loss: none | tensorboard (under output_dir/checkpoints/runs) | wandb"""
    push_to_hub: bool = False
    """push the final policy and its model card to the Hub as hub_model_id (token: HF_TOKEN or `hf auth login`)"""
    hub_model_id: str | None = None
    """the Hub model repo (user/name) that push_to_hub pushes to"""

    def __post_init__(self):
        if self.max_train_samples < 0:
            raise ValueError(f"max_train_samples={self.max_train_samples}: use 0 (all rows) or a positive count")
        if self.online_prompts < 1:
            raise ValueError(f"online_prompts={self.online_prompts}: use at least 1 prompt per online round")
        check_report_to(self.report_to)
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("push_to_hub=true needs hub_model_id=<user/name>, the Hub repo to push to")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(TrainConfig, argv)
    claim(cfg, argv)
    card, df = load_tagged(cfg)
    pairs = load_pairs(cfg)
    procs = check_online(cfg, card)
    stats = train(cfg, card, df, pairs)
    if not procs.is_main_process:
        return 0
    save(cfg, stats)
    final = train_online(cfg, df, pairs) if cfg.online.rounds else cfg.output_dir
    if cfg.push_to_hub:
        print(f"pushed {final} to {push_policy(final, cfg.hub_model_id)}")
    print(f"try: condtune generate --model {final} --score {card.binning.centers[-1]:.1f} --prompt '...' -n 4")
    return 0


def claim(cfg: TrainConfig, argv: list[str]) -> None:
    """The output folder, claimed before anything loads (:func:`condtune.outputs.claim_output`)."""
    claim_output(
        cfg,
        "output_dir",
        job="train",
        argv=argv,
        what="a condtune policy run",
        marks=(POLICY_CARD, RUN_RECORD, CHECKPOINTS),
        overwrite=cfg.overwrite,
        need_bytes=4 * size_of(cfg.model),  # the policy, and a checkpoint with the optimizer's two moments
    )


def load_tagged(cfg: TrainConfig) -> tuple[TagCard, pd.DataFrame]:
    """The tagged dataset and its card, checked to describe each other (at most max_train_samples rows)."""
    card = TagCard.load(cfg.data)
    df = read_table(cfg.data)
    require_columns(df, cfg.data, ["tagged_prompt", "completion"])
    card.check_describes(df, cfg.data)
    for col in ("tagged_prompt", "completion"):  # a null or non-text row would fail deep inside tokenisation
        check_text(df, cfg.data, col)
    if cfg.max_train_samples:
        df = df.sample(min(cfg.max_train_samples, len(df)), random_state=cfg.sft.seed)
    return card, df


def load_pairs(cfg: TrainConfig) -> pd.DataFrame | None:
    """The ranking term's table of scored answers (sft.pairwise > 0), checked to hold pairs; else None."""
    if cfg.sft.pairwise > 0:
        if not cfg.pairs_data:
            raise C.ConfigError("sft.pairwise > 0 needs pairs_data=<a table of several scored answers a prompt>")
        pairs = read_table(cfg.pairs_data)
        try:
            scored_pairs(pairs, cfg.sft.pairwise_margin, source=cfg.pairs_data)
        except ValueError as e:
            raise C.ConfigError(str(e)) from None
        return pairs
    if cfg.pairs_data:
        log.warning("pairs_data=%s is not used: sft.pairwise is 0", cfg.pairs_data)
    return None


def check_online(cfg: TrainConfig, card: TagCard):
    """The processes of this job, and what online rounds need of them and of the data, checked before
    the model loads."""
    if cfg.online.rounds and not cfg.scorer:
        raise C.ConfigError("online.rounds > 0 needs scorer=<a scorer dir> to rate each round's samples")
    procs = processes()  # `accelerate launch -m condtune train` / torchrun: data-parallel SFT
    if cfg.online.rounds and procs.num_processes > 1:
        raise C.ConfigError(f"online.rounds > 0 runs on one process (launched with {procs.num_processes})")
    if cfg.online.rounds and card.attributes:
        raise C.ConfigError(
            f"online.rounds > 0: online rounds sample at score targets only, and {cfg.data} also has attribute tags "
            f"{sorted(card.attributes)}; relabel without tag_columns to train online"
        )
    return procs


def train(cfg: TrainConfig, card: TagCard, df: pd.DataFrame, pairs: pd.DataFrame | None) -> dict:
    """The base model, loaded and trained by conditional SFT into output_dir; the run's stats."""
    model, tokenizer = load_causal_lm(cfg.model)
    log.info(
        "conditional SFT: %d rows, %d steps of %d (SmolLM2-135M on 2 CPU cores: ~3-4 s/step; the bar shows the ETA)",
        len(df),
        cfg.sft.max_steps,
        cfg.sft.per_device_train_batch_size,
    )
    return train_conditional(
        model,
        tokenizer,
        df,
        card=card,
        s=cfg.sft,
        out_dir=cfg.output_dir,
        base=cfg.model,
        pairs=pairs,
        overwrite=cfg.overwrite,
        report_to=cfg.report_to,
    )


def save(cfg: TrainConfig, stats: dict) -> None:
    """train_stats.json beside the policy, and a line saying where it is."""
    write_json(f"{cfg.output_dir}/train_stats.json", {"stats": stats, "config": C.to_dict(cfg)})
    print(
        f"policy saved to {cfg.output_dir}: {stats['steps']} steps in {stats['train_seconds']:.0f} s, "
        f"loss {stats['first_loss']} -> {stats['final_loss']}"
    )


def train_online(cfg: TrainConfig, df: pd.DataFrame, pairs: pd.DataFrame | None) -> str:
    """The online rounds after the SFT, their table printed; the last round's policy folder."""
    require_columns(df, cfg.data, ["prompt", "score"])
    prompts = (
        df["prompt"]
        .sample(cfg.online_prompts, replace=len(df) < cfg.online_prompts, random_state=cfg.sft.seed)
        .tolist()
    )
    table = run_online(
        cfg.output_dir,
        df,
        Scorer.load(cfg.scorer),
        prompts=prompts,
        s=cfg.sft,
        o=cfg.online,
        sampling=cfg.sampling,
        out_dir=f"{cfg.output_dir}/online",
        base=cfg.model,
        pairs=pairs,
    )
    print("round | top-target proxy | all proxy | top-target KL (nats) | pool rows | seconds")
    for r in table:
        print(
            f"{r['round']} | {r['top_proxy']:+.3f} | {r['all_proxy']:+.3f} | {r['top_kl']:.2f} | "
            f"{r['pool_rows']} | {r.get('sample_seconds', 0) + r['train_seconds']:.0f}"
        )
    return f"{cfg.output_dir}/online/round_{cfg.online.rounds}/policy"


if __name__ == "__main__":
    raise SystemExit(main())
