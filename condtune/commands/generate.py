"""Generate at a requested score (and tags) from a policy trained by `condtune train`.

    condtune generate --model runs/policy --score 3 --prompt "Movie review:" -n 4
    condtune generate --model runs/policy --score -2 --tags domain=movie --prompt "Movie review:" --prompt "Tweet:"
    condtune generate --model runs/policy --score 3 --prompt "Movie review:" --best_of 8 --scorer runs/scorer
    condtune generate --model runs/policy --score 3 --prompt "Movie review:" --anchored --guidance_scale 2
    condtune generate --model runs/policy --score 3 --prompt "Review:" --anchored \
        --guidance_scale 0.5 --contrast_score -3

The score is on the raters' scale; it maps to the policy's bin without you knowing the bins.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field, replace
from typing import Literal

from condtune import config as C
from condtune.generate import ConditionalPolicy, pick_best
from condtune.generate import check_request as check_policy_request
from condtune.sampling import SamplingConfig
from condtune.scorer import Scorer

log = logging.getLogger("condtune.generate")
ALIASES = {"-n": "num_return_sequences", "-m": "model", "-p": "prompt"}


@dataclass
class GenerateConfig:
    model: str = "runs/policy"
    """a policy directory from `condtune train`"""
    prompt: list[str] = field(default_factory=lambda: ["Movie review:"])
    """one or more prompts (repeat --prompt)"""
    score: float | None = None
    """requested score on the raters' scale (None: no score tag)"""
    bin: int | None = None
    """request a bin directly (1..K) instead of a score"""
    tags: dict[str, str] = field(default_factory=dict)
    """other tags, e.g. --tags domain=movie"""
    num_return_sequences: int = 4
    """completions per prompt"""
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_new_tokens=48, temperature=0.8, top_p=0.95)
    )
    """sampling settings"""
    decode: Literal["recommended", "plain"] = "recommended"
    """recommended: as the policy's card says (the recipe: anchored, against the mirrored bin); plain: as trained"""
    guidance_scale: float | None = None
    """how far toward the requested score (None: the card's; anchored: 0 = the base model; classifier-free: 1 = off)"""
    anchored: bool = False
    """let the base policy write, moved by the tag's contrast (base + guidance x (tagged - untagged)): stays near the
    base model's style; needs a policy trained with condition dropout"""
    contrast_score: float | None = None
    """guidance contrasts --score's tag with this score's tag instead of the untagged prompt (a negative prompt,
    e.g. the bottom score for a top one); with --guidance_scale != 1 or --anchored"""
    best_of: int = 0
    """sample this many per output and keep the one the scorer puts closest to --score (needs --scorer)"""
    scorer: str | None = None
    """scorer dir: report achieved scores, and rerank with --best_of"""
    seed: int | None = 0
    """sampling seed"""
    json: bool = False
    """print JSON lines instead of text"""


def resolve(cfg: GenerateConfig, policy: ConditionalPolicy) -> GenerateConfig:
    """The request with its decode resolved (:meth:`ConditionalPolicy.resolve_decode`): anchored,
    guidance_scale and contrast_score as they will be used."""
    anchored, guidance_scale, contrast_score = policy.resolve_decode(
        cfg.decode,
        score=cfg.score,
        bin_index=None if cfg.bin is None else cfg.bin - 1,
        anchored=cfg.anchored,
        guidance_scale=cfg.guidance_scale,
        contrast_score=cfg.contrast_score,
    )
    return replace(cfg, anchored=anchored, guidance_scale=guidance_scale, contrast_score=contrast_score)


def check_request(cfg: GenerateConfig, policy: ConditionalPolicy) -> None:
    """Clear errors for requests that cannot mean what they say (:func:`condtune.generate.check_request`,
    which the Python API applies too); a warning where a score is clamped."""
    check_policy_request(
        policy,
        cfg.prompt,
        score=cfg.score,
        bin_index=None if cfg.bin is None else cfg.bin - 1,
        tags=cfg.tags,
        num_return_sequences=cfg.num_return_sequences,
        best_of=cfg.best_of,
        sampling=cfg.sampling,
        guidance_scale=cfg.guidance_scale,
        anchored=cfg.anchored,
        contrast_score=cfg.contrast_score,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = C.parse(GenerateConfig, sys.argv[1:] if argv is None else argv, ALIASES)
    policy = ConditionalPolicy.load(cfg.model)
    cfg = resolve(cfg, policy)
    check_request(cfg, policy)
    bin_index = None if cfg.bin is None else cfg.bin - 1
    scorer = None
    if cfg.scorer:
        scorer = Scorer.load(cfg.scorer)
    if cfg.best_of and scorer is None:
        raise C.ConfigError("--best_of needs --scorer")
    per = max(cfg.best_of, 1)
    s = policy.generate(
        cfg.prompt,
        score=cfg.score,
        num_return_sequences=cfg.num_return_sequences * per,
        tags=cfg.tags,
        sampling=cfg.sampling,
        bin_index=bin_index,
        guidance_scale=cfg.guidance_scale,
        seed=cfg.seed,
        anchored=cfg.anchored,
        contrast_score=cfg.contrast_score,
        check=False,  # check_request did, before the scorer loaded
    )
    rows = []
    for prompt, cands in zip(cfg.prompt, s.texts):
        groups = [cands[j * per : (j + 1) * per] for j in range(cfg.num_return_sequences)]
        rows += [(prompt, pick_best(prompt, g, scorer, target=cfg.score)[0] if cfg.best_of else g[0]) for g in groups]
    achieved = scorer.score_pairs([p for p, _ in rows], [t for _, t in rows]) if scorer else [None] * len(rows)
    b = bin_index if bin_index is not None else (policy.bin_for(cfg.score) if cfg.score is not None else None)
    for (prompt, text), a in zip(rows, achieved):
        if cfg.json:
            print(
                json.dumps(
                    {
                        "prompt": prompt,
                        "requested": cfg.score,
                        "bin": None if b is None else b + 1,
                        "text": text,
                        "achieved": None if a is None else float(a),
                    }
                )
            )
        else:
            head = (
                f"[{prompt} | requested {cfg.score} -> bin {None if b is None else b + 1}/{policy.card.binning.k}"
                + (f" | achieved {a:+.2f}]" if a is not None else "]")
            )
            print(f"{head}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
