"""The whole chain on the embedded defaults, in about 10-15 minutes on a 2-core CPU:

    human ratings (VADER) -> scorer -> relabel movie snippets with score bins
    -> conditional SFT of SmolLM2-135M-Instruct (score before the answer)
    -> generate at each requested score -> table of requested vs achieved (by the scorer)

    condtune quickstart
    condtune quickstart --config quickstart scorer=runs/scorer_vader

Each stage's output is kept in ``output_dir/``; rerunning skips finished stages (delete a stage's
directory to redo it).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from condtune import config as C
from condtune.artifacts import ArtifactMissing, check_model_ref
from condtune.assets import fetch_all
from condtune.controllability import markdown_table, quickstart_table, sample_at_targets, summarise
from condtune.generate import ConditionalPolicy
from condtune.io import write_json, write_text
from condtune.lexicon_rater import LexiconRater
from condtune.modeling import load_causal_lm
from condtune.outputs import claim_output
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard, card_path, relabel, write_tagged
from condtune.sampling import SamplingConfig
from condtune.saved_policy import POLICY_CARD
from condtune.scorer import SCORER_META, OptimConfig, Scorer
from condtune.scorer_training import ScorerTrainConfig, train_or_load
from condtune.tables import load_corpus, read_table, write_table
from condtune.tags import TagFormat
from condtune.vader import VADER_DOMAINS

log = logging.getLogger("condtune.quickstart")


@dataclass
class QuickstartConfig:
    output_dir: str = "runs/quickstart"
    """where every stage writes"""
    model: str = "smollm2-135m"
    """base policy"""
    scorer: str | None = None
    """an existing scorer dir; None trains a quick one on the VADER ratings"""
    scorer_backbone: str = "minilm"
    """quick scorer: encoder"""
    scorer_max_train_samples: int = 4000
    """quick scorer: training items"""
    scorer_optim: OptimConfig = field(default_factory=lambda: OptimConfig(num_train_epochs=1.0, learning_rate=1e-4))
    """quick scorer: optimisation"""
    domain: str = "movie"
    """VADER domain whose texts the policy learns to write"""
    max_train_samples: int = 2000
    """texts to relabel and train on"""
    num_bins: int = 5
    """score bins"""
    tag_style: Literal["text", "token"] = "text"
    """'text' tags (plain words) or 'token' (new special tokens)"""
    sft: SFTSettings = field(
        default_factory=lambda: SFTSettings(
            max_steps=60,
            per_device_train_batch_size=16,
            learning_rate=1e-4,
            max_length=64,
            save_steps=20,
            condition_dropout=0.1,
            tag_contrast=1.0,
        )
    )
    """conditional SFT settings: the recommended recipe (the tag contrast, condition dropout), half an epoch"""
    prompts: list[str] = field(
        default_factory=lambda: [
            "Movie review:",
            "Movie review: The acting",
            "Movie review: This film",
            "Movie review: The story",
        ]
    )
    """evaluation prompts"""
    num_return_sequences: int = 8
    """samples per (prompt, requested score); 8 x 4 prompts = 32 per target keeps the means' noise below the gaps"""
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_new_tokens=40, temperature=1.0, top_p=1.0, bf16=False)
    )
    """evaluation sampling (temperature 1, top-p 1, fp32: the KL printed is exactly that of what was sampled)"""
    seed: int = 0
    """seed"""


def step_seconds(s: SFTSettings) -> float:
    """Seconds an SFT step of 16 rows of 64 tokens took on 2 CPU cores (2026-12-08): 7.1 with the tag
    contrast (its second pass), 4.5 without."""
    return 7.1 if s.tag_contrast > 0 else 4.5


def stage(name: str, minutes: str):
    log.info("\n=== %s (%s) ===", name, minutes)
    return time.time()


def get_scorer(cfg: QuickstartConfig, out: Path) -> tuple[Scorer, str]:

    path = cfg.scorer or str(out / "scorer")
    scfg = ScorerTrainConfig(
        backbone=cfg.scorer_backbone,
        max_train_samples=cfg.scorer_max_train_samples,
        optim=cfg.scorer_optim,
        seed=cfg.seed,
        output_dir=path,
    )
    scorer = train_or_load(scfg, trained_on="vader")
    m = scorer.meta.metrics or {}
    log.info(
        "scorer %s: held-out Pearson %.3f vs human mean (human split-half ceiling %.3f)",
        path,
        m.get("pearson", float("nan")),
        m.get("human_spearman_brown", float("nan")),
    )
    return scorer, path


def get_tagged(cfg: QuickstartConfig, out: Path, scorer: Scorer, *, scorer_path: str):
    path = out / "tagged.jsonl"
    if not card_path(path).exists():
        df = (
            load_corpus("vader", domains=[cfg.domain])
            .sample(frac=1.0, random_state=cfg.seed)
            .head(cfg.max_train_samples)
        )
        tagged, card = relabel(
            df,
            scorer,
            num_bins=cfg.num_bins,
            method="quantile",
            tag_format=TagFormat(style=cfg.tag_style),
            scorer_name=scorer_path,
            source="vader",
        )
        write_tagged(tagged, card, path)

    return read_table(path), TagCard.load(path)


def request_targets(policy: ConditionalPolicy) -> list[float]:
    """One requested score per bin: the bin medians rounded to whole points when that still hits
    every bin (what a user would type), else to two decimals."""
    whole = [float(round(c)) for c in policy.card.binning.centers]
    if [policy.bin_for(t) for t in whole] == list(range(policy.card.binning.k)):
        return whole
    return [round(c, 2) for c in policy.card.binning.centers]


def check(cfg: QuickstartConfig) -> None:
    """Settings errors before any stage runs (the first stages take minutes), each naming the setting."""

    if cfg.num_bins < 2:
        raise C.ConfigError(
            f"num_bins={cfg.num_bins}: score bins need num_bins >= 2 (one bin would tag every row alike)"
        )
    for name, low in (
        ("num_return_sequences", 1),
        ("max_train_samples", cfg.num_bins),
        ("scorer_max_train_samples", 0),
    ):
        if getattr(cfg, name) < low:
            raise C.ConfigError(f"{name}={getattr(cfg, name)} is out of range (use {name} >= {low})")
    if cfg.domain not in VADER_DOMAINS:
        raise C.ConfigError(f"domain={cfg.domain!r}: choose one of the VADER domains {list(VADER_DOMAINS)}")
    if not cfg.prompts or any(not p.strip() for p in cfg.prompts):
        raise C.ConfigError(f"prompts: give at least one prompt, none of them empty (got {cfg.prompts!r})")
    if cfg.scorer and not (Path(cfg.scorer) / SCORER_META).is_file():  # never train a stand-in into a typo
        raise ArtifactMissing(cfg.scorer, f"not a condtune scorer (no {SCORER_META}); leave scorer unset to train one")
    check_model_ref(cfg.model)
    if not cfg.scorer:
        check_model_ref(cfg.scorer_backbone)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(QuickstartConfig, argv)
    check(cfg)
    marks = ("scorer", "tagged.jsonl", "policy", "report.md")
    claim_output(
        cfg, "output_dir", job="quickstart", argv=argv, what="a quickstart run", marks=marks, overwrite_setting=None
    )
    out = Path(cfg.output_dir)
    t0 = stage("1/5 fetch embedded defaults", "~1 min the first time, then cached")
    fetch_all()
    stage("2/5 scorer from human ratings", "~2 min" if not cfg.scorer else "given")
    scorer, scorer_path = get_scorer(cfg, out)
    stage("3/5 relabel", "<1 min")
    df, card = get_tagged(cfg, out, scorer, scorer_path=scorer_path)
    log.info(
        "bins (edges on the raters' -4..4 scale): %s; medians %s",
        [round(e, 2) for e in card.binning.edges],
        [round(c, 2) for c in card.binning.centers],
    )
    stage(
        "4/5 conditional SFT",
        f"~{cfg.sft.max_steps * step_seconds(cfg.sft) / 60:.0f} min on 2 CPU cores: {cfg.sft.max_steps} steps x "
        f"{cfg.sft.per_device_train_batch_size}",
    )
    policy_dir = out / "policy"
    if not (policy_dir / POLICY_CARD).exists():
        model, tok = load_causal_lm(cfg.model)
        write_json(
            out / "train_stats.json",
            train_conditional(model, tok, df, card=card, s=cfg.sft, out_dir=policy_dir, base=cfg.model),
        )
    stage("5/5 generate at each requested score, judge, exact KL", "~3 min on 2 CPU cores")
    policy = ConditionalPolicy.load(policy_dir)
    targets = request_targets(policy)
    judge = LexiconRater()
    n = cfg.num_return_sequences
    samples = sample_at_targets(
        policy, scorer, cfg.prompts, targets=targets, n=n, sampling=cfg.sampling, seed=cfg.seed, judge=judge, kl=True
    )
    summary = {**summarise(samples), "judge": {"name": judge.name, **summarise(samples, "judge")}}
    summary["kl_from_base"] = {str(r): float(v) for r, v in samples.groupby("requested")["kl"].mean().items()}

    write_table(samples, out / "samples.jsonl")
    write_json(out / "summary.json", summary)
    report = f"{markdown_table(samples)}\n\n{quickstart_table(samples, judge.name)}\n"
    write_text(out / "report.md", report)
    print("\n" + report)
    print(
        f"done in {(time.time() - t0) / 60:.1f} min. Outputs in {out}/: scorer/, tagged.jsonl (+ .card.json), policy/, "
        "samples.jsonl, summary.json, report.md"
    )
    print(
        f"next: condtune generate --model {policy_dir} --score {targets[-1]} --prompt 'Movie review:' "
        f"-n 4 --scorer {scorer_path}"
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
