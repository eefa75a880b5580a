"""Generation from a conditioned policy at a requested score (and other tags), with optional
classifier-free guidance and best-of-n reranking by a scorer."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np

from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.modeling import load_causal_lm
from condtune.relabel import TagCard, tagged_prompt
from condtune.sampling import MAX_PER_PROMPT, MAX_SEQUENCES, Samples, SamplingConfig, check_budget, sample
from condtune.saved_policy import PLAIN, Decode, load_policy_card, load_policy_decode
from condtune.tags import line_breaker

log = logging.getLogger(__name__)

MAX_GUIDANCE = 100.0
"""the largest guidance: beyond, the guided log-probabilities lose all precision (and overflow)"""


class ConditionalPolicy:
    """A policy trained by ``condtune train``: its model, tokenizer and tag card."""

    def __init__(
        self,
        model,
        tokenizer,
        card: TagCard,
        *,
        path: str | None = None,
        base: str | None = None,
        decode: Decode = PLAIN,
    ):
        self.model, self.tokenizer, self.card, self.path, self.base = model, tokenizer, card, path, base
        self.decode = decode
        """the decode its card records (:class:`~condtune.saved_policy.Decode`): the default of a request"""
        self._base_model = None

    @classmethod
    def load(cls, path: str | Path) -> ConditionalPolicy:
        card, base = load_policy_card(path)
        decode = load_policy_decode(path)
        model, tok = load_causal_lm(path)
        return cls(model, tok, card, path=str(path), base=base, decode=decode)

    def base_model(self):
        """The base policy it was fine-tuned from (loaded once), the anchor of anchored guidance: a
        causal LM with the policy's vocabulary (less the tag tokens it added), else a ConfigError."""
        if self._base_model is None:
            if not self.base:
                raise ConfigError(
                    f"--anchored: {self.path}'s policy card names no base model to anchor the guidance on"
                )
            try:
                model, tok = load_causal_lm(self.base)
            except DataError as exc:
                raise ConfigError(
                    f"--anchored: the policy's base model {self.base} cannot be loaded as a causal LM ({exc})"
                ) from None
            self.check_anchor(model, tok)
            self._base_model = model
        return self._base_model

    def check_anchor(self, model, tokenizer) -> None:
        """A ConfigError unless ``model`` (with ``tokenizer``) can anchor this policy's guidance: a
        decoder whose tokens are the policy's own (the same ids), the policy's tag tokens aside, and
        whose logits cover them."""
        pv, bv = self.tokenizer.get_vocab(), tokenizer.get_vocab()
        card = self.card
        tag_tokens = [t for t in card.tag_format.special_tokens(card.binning.k, card.attributes) if t in pv]
        own = len(pv) - len(tag_tokens)
        width = model.get_output_embeddings().weight.shape[0] if model.get_output_embeddings() is not None else 0
        fix = "anchored guidance needs the base model the policy was trained from"
        if getattr(model.config, "is_encoder_decoder", False) or not width:
            raise ConfigError(f"--anchored: the base model {self.base} is not a decoder-only causal LM; {fix}")
        if len(bv) != own or width < len(bv):
            raise ConfigError(
                f"--anchored: the base model {self.base} has a vocabulary of {len(bv)} tokens ({width} logits), "
                f"the policy {own} (besides its {len(tag_tokens)} tag tokens); {fix}"
            )
        other = next((t for t, i in bv.items() if pv.get(t) != i), None)
        if other is not None:
            raise ConfigError(
                f"--anchored: the base model {self.base} numbers its tokens otherwise than the policy "
                f"({other!r}: {bv[other]} there, {pv.get(other)} in the policy); {fix}"
            )

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
        """``prompt`` as the policy reads it for this request (:func:`condtune.relabel.tagged_prompt`)."""
        return tagged_prompt(self.card, prompt, score=score, bin_index=bin_index, tags=dict(tags or {}))

    def resolve_decode(
        self,
        decode: str = "recommended",
        *,
        score: float | None = None,
        bin_index: int | None = None,
        anchored: bool = False,
        guidance_scale: float | None = None,
        contrast_score: float | None = None,
    ) -> tuple[bool, float, float | None]:
        """(anchored, guidance_scale, contrast_score) of a request. ``decode="plain"``: as trained (any
        guidance asked for too is a ConfigError). ``"recommended"``: what the request says where it says
        it (``anchored`` or a ``contrast_score``), else the card's :attr:`decode` for a score request (the
        mirrored bin's median as the contrast; the untagged prompt for a middle bin), ``guidance_scale``
        overriding the card's scale when given."""
        if decode not in ("recommended", "plain"):
            raise ConfigError(f"decode={decode!r}: use recommended (the policy card's decode) or plain")
        if decode == "plain":
            if anchored or contrast_score is not None or guidance_scale not in (None, 1.0):
                raise ConfigError(
                    "decode=plain samples the policy as trained: drop --anchored, --guidance_scale "
                    "and --contrast_score (or use decode=recommended)"
                )
            return False, 1.0, None
        rec = self.decode
        if anchored or contrast_score is not None or (score is None and bin_index is None) or rec == PLAIN:
            return anchored, 1.0 if guidance_scale is None else guidance_scale, contrast_score
        check_target(self, score, bin_index)  # a bin to mirror
        contrast = None
        if rec.contrast == "mirror":
            b = bin_index if bin_index is not None else self.bin_for(score)
            mirror = self.card.binning.k - 1 - b
            contrast = None if mirror == b else float(self.card.binning.centers[mirror])
        return rec.anchored, rec.guidance_scale if guidance_scale is None else guidance_scale, contrast

    def generate(
        self,
        prompts: Sequence[str],
        *,
        score: float | None = None,
        num_return_sequences: int = 1,
        tags: Mapping[str, str] | None = None,
        sampling: SamplingConfig = SamplingConfig(),
        bin_index: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        progress: bool = True,
        anchored: bool = False,
        contrast_score: float | None = None,
        check: bool = True,
        decode: Literal["recommended", "plain"] = "recommended",
    ) -> Samples:
        """``num_return_sequences`` completions per prompt, conditioned on ``score`` (or ``bin_index``) and ``tags``.

        By default as the policy's card recommends (:meth:`resolve_decode`; ``decode="plain"``: as trained).
        ``guidance_scale != 1``: classifier-free guidance against the prompt without the score tag
        (attribute tags kept): uncond + guidance_scale * (cond - uncond). ``anchored``: the base model
        writes, moved by the tag's contrast: base + guidance_scale * (cond - uncond). ``contrast_score``:
        contrast the requested tag with this score's tag instead of the untagged prompt (a negative
        prompt). ``check``: refuse a request that cannot mean what it says first (:func:`check_request`).
        """
        asked = dict(anchored=anchored, guidance_scale=guidance_scale, contrast_score=contrast_score)
        anchored, guidance_scale, contrast_score = self.resolve_decode(
            decode, score=score, bin_index=bin_index, **asked
        )
        guide = dict(sampling=sampling, guidance_scale=guidance_scale, anchored=anchored, contrast_score=contrast_score)
        if check:
            n = num_return_sequences
            check_request(self, prompts, score=score, bin_index=bin_index, tags=tags, num_return_sequences=n, **guide)
        full = [self.tagged(p, score=score, bin_index=bin_index, tags=tags) for p in prompts]
        draw = dict(n=num_return_sequences, cfg=sampling, seed=seed, progress=progress)
        if guidance_scale == 1.0 and not anchored:
            return sample(self.model, self.tokenizer, full, **draw)
        anchor = self.base_model() if anchored else None  # checked before any sampling
        uncond = [self.tagged(p, score=contrast_score, tags=tags) for p in prompts]
        return sample(
            self.model,
            self.tokenizer,
            full,
            **draw,
            uncond_prompts=uncond,
            guidance=guidance_scale,
            anchor_model=anchor,
            anchor_prompts=list(prompts) if anchored else None,
        )


def check_request(
    policy: ConditionalPolicy,
    prompts: Sequence[str],
    *,
    score: float | None = None,
    bin_index: int | None = None,
    tags: Mapping[str, str] | None = None,
    num_return_sequences: int = 1,
    best_of: int = 0,
    sampling: SamplingConfig = SamplingConfig(),
    guidance_scale: float = 1.0,
    anchored: bool = False,
    contrast_score: float | None = None,
) -> None:
    """A request means what it says: each setting is applied, or refused here with a
    :class:`~condtune.config.ConfigError` naming it, before any work (the command line's names; ``bin``
    is ``bin_index + 1``). A warning where a score beyond the policy's targets is clamped to an end bin."""
    tags = dict(tags or {})
    check_counts(num_return_sequences, best_of, len(prompts))
    check_target(policy, score, bin_index)
    has_score = score is not None or bin_index is not None
    check_guidance(policy, guidance_scale, anchored=anchored, has_score=has_score)
    if contrast_score is not None:
        check_contrast(
            policy, contrast_score, score=score, bin_index=bin_index, guided=guidance_scale != 1.0 or anchored
        )
    check_tags(policy, tags)
    if not has_score and not tags and any(not p.strip() for p in prompts):
        raise ConfigError("prompt: an empty prompt with no score, bin or tags gives the model nothing to read")
    if prompts:  # the tagged prompts (and the contrast's), as the sampler will read them
        texts = [policy.tagged(p, score=score, bin_index=bin_index, tags=tags) for p in prompts]
        if contrast_score is not None:
            texts += [policy.tagged(p, score=contrast_score, tags=tags) for p in prompts]
        check_budget(policy.model, policy.tokenizer, texts, n=1, cfg=sampling)
    centers = policy.card.binning.centers
    if score is not None and not centers[0] <= score <= centers[-1]:
        log.warning(
            "score %.2f is beyond the policy's targets (%.2f .. %.2f): it asks for the %s bin",
            score,
            centers[0],
            centers[-1],
            "top" if score > centers[-1] else "bottom",
        )


def check_counts(num_return_sequences: int, best_of: int, n_prompts: int) -> None:
    """``num_return_sequences`` completions a prompt (each the best of ``best_of``), within
    :data:`MAX_PER_PROMPT` and, over ``n_prompts`` prompts, :data:`MAX_SEQUENCES`."""
    n = num_return_sequences
    if n < 1:
        raise ConfigError(f"num_return_sequences={n}: ask for at least 1 completion per prompt")
    if best_of < 0:
        raise ConfigError(f"best_of={best_of}: use 0 (off) or the number of samples per output")
    per = n * max(best_of, 1)
    if per > MAX_PER_PROMPT:
        raise ConfigError(
            f"num_return_sequences={n}"
            + (f", best_of={best_of}" if best_of else "")
            + f": asks for {per} completions per prompt; "
            f"at most {MAX_PER_PROMPT}"
        )
    if per * n_prompts > MAX_SEQUENCES:
        raise ConfigError(
            f"num_return_sequences={n}: {per} completions for each of {n_prompts} prompts is {per * n_prompts}; "
            f"at most {MAX_SEQUENCES} a request"
        )


def check_target(policy: ConditionalPolicy, score: float | None, bin_index: int | None) -> None:
    """A score on the raters' scale, or one of the policy's bins; not both."""
    k = policy.card.binning.k
    if bin_index is not None and not 0 <= bin_index < k:
        raise ConfigError(f"bin={bin_index + 1}: {policy.path or 'the policy'} has bins 1..{k}")
    if score is not None and bin_index is not None:
        raise ConfigError("give --score or --bin, not both")
    if score is not None and not math.isfinite(score):
        raise ConfigError(f"score={score}: expected a finite number on the raters' scale")


def check_guidance(policy: ConditionalPolicy, guidance_scale: float, *, anchored: bool, has_score: bool) -> None:
    """A finite guidance_scale in [0, :data:`MAX_GUIDANCE`]; guidance and anchoring act on the score tag, so
    they need a score, and anchoring needs the base model the policy's card names."""
    if not math.isfinite(guidance_scale):
        raise ConfigError(f"guidance_scale={guidance_scale}: expected a finite number (1 = off)")
    if guidance_scale < 0:
        raise ConfigError(
            f"guidance_scale={guidance_scale}: must be >= 0 (1 = off, 0 = the prompt without the score tag, "
            "> 1 = pushed toward the score)"
        )
    if guidance_scale > MAX_GUIDANCE:
        raise ConfigError(
            f"guidance_scale={guidance_scale}: at most {MAX_GUIDANCE:g} (beyond, the guided log-probabilities overflow)"
        )
    if guidance_scale != 1.0 and not has_score:
        raise ConfigError(
            f"guidance_scale={guidance_scale}: guidance acts on the score tag; "
            "give a --score (or --bin) to guide toward"
        )
    if anchored and not has_score:
        raise ConfigError("--anchored: the base model is moved by the score tag's contrast; give a --score (or --bin)")
    if anchored and not policy.base:
        raise ConfigError(
            f"--anchored: {policy.path or 'the policy'}'s policy card names no base model to anchor the guidance on"
        )


def check_contrast(
    policy: ConditionalPolicy, contrast_score: float, *, score: float | None, bin_index: int | None, guided: bool
) -> None:
    """A contrast score acts through guidance, against a requested score in another bin."""
    b = policy.card.binning
    if not math.isfinite(contrast_score):
        raise ConfigError(f"contrast_score={contrast_score}: expected a finite number on the raters' scale")
    if score is None and bin_index is None:
        raise ConfigError("--contrast_score: give the --score (or --bin) to contrast it with")
    if not guided:
        raise ConfigError("--contrast_score acts through guidance: set --guidance_scale != 1 or --anchored")
    if int(b.assign(contrast_score)) == (bin_index if bin_index is not None else int(b.assign(score))):
        raise ConfigError(
            f"--contrast_score {contrast_score}: it falls in the same bin as the requested score, so the "
            "contrast is zero and the guidance does nothing"
        )


def check_tags(policy: ConditionalPolicy, tags: Mapping[str, str]) -> None:
    """Each tag and value in the policy card's vocabulary, and none that could write a line of its own."""
    attrs = policy.card.attributes
    for tag, value in tags.items():
        for what, text in (("tag", tag), ("value", value)):
            bad = line_breaker(str(text))
            if bad:
                raise ConfigError(
                    f"tags: the {what} {str(text)!r} holds {bad}; a tag cannot write a line of its own into the prompt"
                )
        if tag not in attrs:
            known = sorted(attrs) or "no tags but the score"
            raise ConfigError(f"tags: unknown tag {tag!r}; {policy.path or 'the policy'} knows {known}")
        if str(value) not in attrs[tag]:
            raise ConfigError(f"tags: unknown value {value!r} for tag {tag!r}; known values: {attrs[tag]}")


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
