"""Generation from a conditioned policy at a requested score (and other tags), with optional
classifier-free guidance and best-of-n reranking by a scorer."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from condtune.modeling import load_causal_lm
from condtune.policy import load_policy_card
from condtune.relabel import TagCard
from condtune.sampling import Samples, SamplingConfig, sample


class ConditionalPolicy:
    """A policy trained by ``condtune train``: its model, tokenizer and tag card."""

    def __init__(self, model, tokenizer, card: TagCard, *, path: str | None = None, base: str | None = None):
        self.model, self.tokenizer, self.card, self.path, self.base = model, tokenizer, card, path, base
        self._base_model = None

    @classmethod
    def load(cls, path: str | Path) -> ConditionalPolicy:
        card, base = load_policy_card(path)
        model, tok = load_causal_lm(path)
        return cls(model, tok, card, path=str(path), base=base)

    def base_model(self):
        """The base policy it was fine-tuned from (loaded once), the anchor of anchored guidance."""
        if self._base_model is None:
            if not self.base:
                raise ValueError(
                    f"{self.path}: the policy card names no base model, so guidance cannot be anchored on it"
                )
            self._base_model, _ = load_causal_lm(self.base)
        return self._base_model

    def bin_for(self, score: float) -> int:
        """The bin a requested score (raters' scale) falls into."""
        return int(self.card.binning.assign(score))

    def tagged(
        self,
        prompt: str,
        *,
        score: float | None = None,
        bin_index: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        return self.card.prefix(score=score, bin_index=bin_index, attrs=dict(tags or {})) + prompt

    def generate(
        self,
        prompts: Sequence[str],
        *,
        score: float | None = None,
        n: int = 1,
        tags: Mapping[str, str] | None = None,
        sampling: SamplingConfig = SamplingConfig(),
        bin_index: int | None = None,
        guidance: float = 1.0,
        seed: int | None = None,
        progress: bool = True,
        anchored: bool = False,
        contrast_score: float | None = None,
    ) -> Samples:
        """``n`` completions per prompt, conditioned on ``score`` (or ``bin_index``) and ``tags``.

        ``guidance > 1`` applies classifier-free guidance against the same prompt without the
        score tag (attribute tags kept): logits = uncond + guidance * (cond - uncond).
        ``anchored``: the base policy writes, moved by the tag's contrast:
        log p_base(.|prompt) + guidance * (cond - uncond), which keeps the base model's style
        (its KL to the base is only what the tag adds); needs a policy trained with condition dropout.
        ``contrast_score``: guidance contrasts the requested tag with this score's tag instead of the
        untagged prompt (a negative prompt: e.g. the top score against the bottom one), for either
        kind of guidance; needs no condition dropout.
        """
        full = [self.tagged(p, score=score, bin_index=bin_index, tags=tags) for p in prompts]
        if (guidance == 1.0 and not anchored) or (score is None and bin_index is None):
            return sample(self.model, self.tokenizer, full, n=n, cfg=sampling, seed=seed, progress=progress)
        uncond = [self.tagged(p, score=contrast_score, tags=tags) for p in prompts]
        return sample(
            self.model,
            self.tokenizer,
            full,
            n=n,
            cfg=sampling,
            seed=seed,
            progress=progress,
            uncond_prompts=uncond,
            guidance=guidance,
            anchor_model=self.base_model() if anchored else None,
            anchor_prompts=list(prompts) if anchored else None,
        )


def pick_best(prompt: str, candidates: Sequence[str], scorer, *, target: float | None = None) -> tuple[str, float]:
    """The candidate with the highest scorer score, or the one closest to ``target``."""
    s = scorer.score_pairs([prompt] * len(candidates), candidates)
    i = int(np.argmax(s) if target is None else np.argmin(np.abs(s - target)))
    return candidates[i], float(s[i])


def best_of_n(
    samples: Samples, prompts: Sequence[str], scorer, target: float | None = None
) -> tuple[list[str], np.ndarray]:
    """Best-of-n reranking: one completion per prompt from its n samples."""
    picked = [pick_best(p, cands, scorer, target=target) for p, cands in zip(prompts, samples.texts)]
    return [t for t, _ in picked], np.asarray([s for _, s in picked])
