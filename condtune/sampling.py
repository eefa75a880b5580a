"""Batched sampling from a causal LM: n completions per prompt, left padding, progress bar.

The distribution a sample is drawn from is written once, in :func:`shape_logprobs`:
classifier-free guidance (optional), then temperature, then nucleus (top-p) truncation. The
sampler applies it through :class:`ShapedSampling` (generate's own temperature/top-p warpers are
switched off), and :mod:`condtune.kl` applies the same function when it measures the exact KL
of what was sampled, so the two can never disagree. :class:`condtune.hf_decoding.ConditionalLogitsProcessor`
is the same processor, made public for a plain ``model.generate``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from condtune.config import ConfigError, check_ranges
from condtune.modeling import autocast

MAX_PER_PROMPT = 100_000
"""the most completions one prompt may ask for (n, times best_of)"""
MAX_SEQUENCES = 1_000_000
"""the most completions one call may ask for (over all its prompts)"""


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 48
    """tokens generated per completion"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus sampling mass"""
    batch_size: int = 16
    """sequences per generate() call"""
    repetition_penalty: float = 1.0
    """>1 discourages repeats (1 = off)"""
    bf16: bool | None = None
    """bf16 autocast while sampling (None = where the hardware has it; false = fp32, as the benchmark's exact KL)"""

    def __post_init__(self):
        checks = {
            "max_new_tokens": self.max_new_tokens >= 1,
            "temperature": self.temperature >= 0,
            "top_p": 0 < self.top_p <= 1,
            "batch_size": self.batch_size >= 1,
            "repetition_penalty": self.repetition_penalty > 0,
        }
        check_ranges(
            self,
            checks,
            "max_new_tokens, batch_size >= 1; temperature >= 0, 0 = greedy; 0 < top_p <= 1; repetition_penalty > 0",
        )


@dataclass
class Samples:
    """Completions grouped by prompt: ``texts[i][j]`` is the j-th completion of prompt i."""

    texts: list[list[str]]
    n_tokens: list[list[int]] = field(default_factory=list)
    response_ids: list[list[list[int]]] = field(default_factory=list)
    """generated token ids (up to and including EOS), grouped like ``texts``"""

    @property
    def total_tokens(self) -> int:
        return sum(sum(row) for row in self.n_tokens)


def gather_samples(part: Samples, procs) -> Samples:
    """The samples of every process of a data-parallel launch, in prompt order, on every process;
    ``part`` holds this process's prompts ``process_index::num_processes``. One process: ``part``."""
    if procs.num_processes == 1:
        return part
    from accelerate.utils import gather_object

    rank, world = procs.process_index, procs.num_processes
    rows = gather_object([(rank + j * world, part.texts[j], part.n_tokens[j]) for j in range(len(part.texts))])
    rows.sort(key=lambda r: r[0])
    return Samples(texts=[r[1] for r in rows], n_tokens=[r[2] for r in rows])


def trim_at_eos(ids: Sequence[int], eos_id: int | None) -> list[int]:
    """Keep tokens up to and including the first EOS (all of them without one)."""
    ids = list(ids)
    return ids[: ids.index(eos_id) + 1] if eos_id is not None and eos_id in ids else ids


def shape_logprobs(
    logits: torch.Tensor,
    uncond_logits: torch.Tensor | None = None,
    *,
    guidance: float = 1.0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    anchor_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-probabilities of the distribution a token is sampled from, over the last dimension.

    A distribution that is not finite (a guidance or temperature that overflows it) is a
    :class:`~condtune.config.ConfigError` naming them, not a sample.

    1. guidance, in log-prob space:
       - classifier-free (Sanchez et al. 2023), when ``guidance != 1`` and ``uncond_logits`` is
         given: ``log p_uncond + g * (log p_cond - log p_uncond)``;
       - anchored on another model (``anchor_logits``, e.g. the base policy on the plain prompt;
         the proxy-tuning of Liu et al. 2024): ``log p_anchor + g * (log p_cond - log p_uncond)``,
         so only the tag's contrast moves the anchor (at any ``g``, 1 included); anchor tokens the
         policy lacks get nothing, policy tokens the anchor lacks (added tags) get ``-inf``;
    2. temperature: divide by ``temperature`` and renormalise;
    3. top-p: keep the smallest set of most likely tokens whose mass reaches ``top_p`` (the rule
       of transformers' ``TopPLogitsWarper``), renormalise; the rest get ``-inf``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to define a sampling distribution, got {temperature}")
    scores = F.log_softmax(logits.float(), dim=-1)
    if anchor_logits is not None:
        if uncond_logits is None:
            raise ValueError("anchored guidance needs the unconditional logits")
        v = scores.shape[-1]
        a = F.log_softmax(anchor_logits.float()[..., :v], dim=-1)
        if a.shape[-1] < v:
            a = F.pad(a, (0, v - a.shape[-1]), value=float("-inf"))
        scores = a + guidance * (scores - F.log_softmax(uncond_logits.float(), dim=-1))
    elif guidance != 1.0 and uncond_logits is not None:
        u = F.log_softmax(uncond_logits.float(), dim=-1)
        scores = guidance * (scores - u) + u
    scores = F.log_softmax(scores / temperature, dim=-1)
    if top_p < 1.0:
        sorted_lp, order = torch.sort(scores, dim=-1, descending=False)
        remove_sorted = sorted_lp.exp().cumsum(dim=-1) <= (1 - top_p)
        remove_sorted[..., -1] = False
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        scores = F.log_softmax(scores.masked_fill(remove, float("-inf")), dim=-1)
    check_finite(scores, logits, guidance=guidance, temperature=temperature)
    return scores


def check_finite(scores: torch.Tensor, logits: torch.Tensor, *, guidance: float, temperature: float) -> None:
    """A clear error, not a sample from NaN, when shaped log-probabilities are no distribution: a NaN,
    or a row with no finite entry (a guidance so large that ``g * (cond - uncond)`` overflows, or a
    temperature so small that ``scores / temperature`` does); a model whose own logits are not finite
    is named as such."""
    if not bool((torch.isnan(scores).any() | (scores.amax(dim=-1) == float("-inf")).any()).item()):
        return
    if not bool(torch.isfinite(logits).all().item()):
        raise ValueError("the model's logits are not finite (NaN or inf): its weights or its precision overflowed")
    raise ConfigError(
        f"guidance={guidance:g}, temperature={temperature:g}: the guided log-probabilities are not finite "
        "(they overflow); use a smaller guidance (or a larger temperature)"
    )


class Branch:
    """A second forward pass that follows the sampled tokens from its own prompt (left padded, its
    own KV cache): the unconditional branch of guidance, or the anchor model."""

    def __init__(self, model, ids: torch.Tensor, mask: torch.Tensor):
        self.model, self.ids, self.mask, self.cache = model, ids, mask, None
        self.prompt_ids, self.prompt_mask = ids, mask
        # transformers 5 renamed past_key_values -> cache (the old name is deprecated)
        self.cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def restart(self, rows: int) -> None:
        """Read its prompts afresh (its cache dropped) for a batch of ``rows`` rows: each prompt's row
        ``rows / prompts`` times in a row, as generate() repeats a prompt for ``num_return_sequences``."""
        n = self.prompt_ids.shape[0]
        if rows % n:
            raise ValueError(
                f"a batch of {rows} sequences cannot follow the {n} prompts of guidance: generate() must "
                "read the same prompts (each repeated num_return_sequences times)"
            )
        k = rows // n
        self.ids, self.mask = (
            x.repeat_interleave(k, dim=0) if k > 1 else x for x in (self.prompt_ids, self.prompt_mask)
        )
        self.cache = None

    def next_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            ids, mask = self.ids, self.mask
        else:
            ids = input_ids[:, -1:]
            self.mask = torch.cat([self.mask, torch.ones_like(ids)], dim=1)
            mask = self.mask
        pos = (mask.cumsum(-1) - 1).clamp_min(0)[:, -ids.shape[1] :]
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **{self.cache_kw: self.cache}
        )
        self.cache = getattr(out, self.cache_kw)
        return out.logits[:, -1]


class ShapedSampling:
    """A generate() logits processor that replaces the scores by :func:`shape_logprobs` of them;
    ``uncond`` and ``anchor`` are the :class:`Branch` es of guidance (row i of the batch is guided
    by row i of their prompts; a batch of ``num_return_sequences`` rows a prompt by its row, repeated).

    The branches follow the tokens generate() samples, one a step: a batch whose rows are not the last
    step's plus one token each (beam search, assisted decoding) is refused; a second generate() from
    the same prompts (the first step's length again) starts them afresh."""

    def __init__(
        self,
        temperature: float,
        top_p: float,
        *,
        guidance: float = 1.0,
        uncond: Branch | None = None,
        anchor: Branch | None = None,
    ):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 to define a sampling distribution, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature, self.top_p, self.guidance, self.uncond, self.anchor = (
            temperature,
            top_p,
            guidance,
            uncond,
            anchor,
        )
        self._last: torch.Tensor | None = None
        self._start = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        guided = self.uncond is not None and (self.guidance != 1.0 or self.anchor is not None)
        if guided:
            self._follow(input_ids)
        uncond = self.uncond.next_logits(input_ids) if guided else None
        anchor = self.anchor.next_logits(input_ids) if guided and self.anchor is not None else None
        return shape_logprobs(
            scores, uncond, guidance=self.guidance, temperature=self.temperature, top_p=self.top_p, anchor_logits=anchor
        )

    def _follow(self, input_ids: torch.Tensor) -> None:
        """The branches ready for this step: a step on from the last one, or started afresh."""
        last, self._last = self._last, input_ids
        if (
            last is not None
            and input_ids.shape[0] == last.shape[0]
            and input_ids.shape[1] == last.shape[1] + 1
            and torch.equal(input_ids[:, :-1], last)
        ):
            return
        if last is not None and input_ids.shape[1] != self._start:
            raise ValueError(
                "guided decoding follows one sampled token a step in the same rows (sampling or greedy "
                "decoding); these sequences are not the last step's plus one token (beam search, assisted "
                "decoding, or other prompts than the processor was built for)"
            )
        self._start = input_ids.shape[1]
        for branch in (self.uncond, self.anchor):
            if branch is not None:
                branch.restart(input_ids.shape[0])


def context_length(model, tokenizer) -> int | None:
    """The most tokens the model reads (prompt and completion): its config's
    ``max_position_embeddings``, else its tokenizer's ``model_max_length``, whichever is set and sane
    (transformers' "no limit" is 1e30); None when neither is."""
    for v in (getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)):
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 10**8:
            return v
    return None


def check_budget(model, tokenizer, prompts: Sequence[str], *, n: int, cfg: SamplingConfig) -> None:
    """A sampling request within bounds, before any work: at most :data:`MAX_PER_PROMPT` completions a
    prompt and :data:`MAX_SEQUENCES` in all, and the longest prompt plus ``max_new_tokens`` within the
    model's context (:func:`context_length`). Each bound broken is a :class:`ConfigError` naming the setting."""
    if n > MAX_PER_PROMPT:
        raise ConfigError(f"num_return_sequences={n}: asks for {n} completions per prompt; at most {MAX_PER_PROMPT}")
    if n * len(prompts) > MAX_SEQUENCES:
        raise ConfigError(
            f"num_return_sequences={n}: {n} completions for each of {len(prompts)} prompts is {n * len(prompts)}; "
            f"at most {MAX_SEQUENCES}"
        )
    limit = context_length(model, tokenizer)
    if not limit or not prompts:
        return
    longest = max(len(x) for x in tokenizer(list(prompts), add_special_tokens=False)["input_ids"])
    if longest >= limit:
        raise ConfigError(
            f"prompt: the longest prompt is {longest} tokens (tags included); the model reads at most {limit}"
        )
    if longest + cfg.max_new_tokens > limit:
        raise ConfigError(
            f"sampling.max_new_tokens={cfg.max_new_tokens}: with the longest prompt's {longest} tokens "
            f"(tags included) that is {longest + cfg.max_new_tokens}, beyond the model's context of "
            f"{limit} tokens; use sampling.max_new_tokens <= {limit - longest}"
        )


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    n: int = 1,
    cfg: SamplingConfig = SamplingConfig(),
    seed: int | None = None,
    progress: bool = True,
    desc: str = "generating",
    uncond_prompts: Sequence[str] | None = None,
    guidance: float = 1.0,
    anchor_model=None,
    anchor_prompts: Sequence[str] | None = None,
) -> Samples:
    """Sample ``n`` completions for each prompt (prompts are used verbatim, no chat template).

    ``uncond_prompts`` (one per prompt) with ``guidance != 1`` gives classifier-free guidance,
    batched like the prompts; with ``anchor_model`` reading ``anchor_prompts`` too, the guidance is
    anchored on that model (:func:`shape_logprobs`); at temperature 0 each step takes the argmax of
    that guided distribution (greedy decoding of it). A repetition penalty, if set, acts before the
    shaping and is not part of the distribution :mod:`condtune.kl` measures (the benchmark keeps it off).
    """
    if anchor_model is not None and (anchor_prompts is None or uncond_prompts is None):
        raise ValueError("anchored guidance needs anchor_prompts and uncond_prompts")
    check_budget(model, tokenizer, [*prompts, *(uncond_prompts or ())], n=n, cfg=cfg)
    guided = uncond_prompts is not None and (guidance != 1.0 or anchor_model is not None)
    if seed is not None:
        torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    flat = [i for i in range(len(prompts)) for _ in range(n)]
    out_ids: list[list[int]] = []
    model.eval()
    if anchor_model is not None:
        anchor_model.eval()
    dev = next(model.parameters()).device
    bar = tqdm(total=len(flat), desc=desc, unit="seq", disable=not progress, leave=False)
    for start in range(0, len(flat), cfg.batch_size):
        chunk = flat[start : start + cfg.batch_size]
        shaping = None
        if guided or cfg.temperature > 0:
            uncond = _branch(model, tokenizer, [uncond_prompts[i] for i in chunk], dev) if guided else None
            if anchor_model is not None:
                anchor = _branch(anchor_model, tokenizer, [anchor_prompts[i] for i in chunk], dev)
            else:
                anchor = None
            # greedy (temperature 0): the argmax of the same guided distribution (temperature and top-p
            # keep its argmax, so they are left at 1)
            t, p = (cfg.temperature, cfg.top_p) if cfg.temperature > 0 else (1.0, 1.0)
            shaping = ShapedSampling(t, p, guidance=guidance, uncond=uncond, anchor=anchor)
        out_ids += _generate(model, tokenizer, [prompts[i] for i in chunk], cfg, shaping, dev)
        bar.update(len(chunk))
    bar.close()
    out_texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out_ids]

    def group(flat: list) -> list[list]:
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]

    return Samples(texts=group(out_texts), n_tokens=group([len(ids) for ids in out_ids]), response_ids=group(out_ids))


def _encode(tokenizer, texts: Sequence[str], dev) -> dict[str, torch.Tensor]:
    """``texts`` as one left-padded batch (the tokenizer's padding side) on ``dev``, no special tokens added."""
    return tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False).to(dev)


def _branch(model, tokenizer, texts: Sequence[str], dev) -> Branch:
    """The :class:`Branch` of ``model`` reading ``texts``, a batch's rows (on ``dev``, the policy's device)."""
    e = _encode(tokenizer, texts, dev)
    return Branch(model, e["input_ids"], e["attention_mask"])


def _generate(
    model, tokenizer, texts: Sequence[str], cfg: SamplingConfig, shaping: ShapedSampling | None, dev
) -> list[list[int]]:
    """One batch of completions of ``texts`` (on ``dev``), each up to its first EOS (:func:`trim_at_eos`):
    drawn from ``shaping``'s distribution at a temperature > 0, else its argmax (greedy; plain greedy
    decoding without ``shaping``)."""
    from transformers import LogitsProcessorList

    eos = tokenizer.eos_token_id
    enc = _encode(tokenizer, texts, dev)
    kw = dict(
        max_new_tokens=cfg.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
        repetition_penalty=cfg.repetition_penalty,
    )
    if shaping is not None:
        kw["logits_processor"] = LogitsProcessorList([shaping])
    if cfg.temperature > 0:
        kw.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    else:
        kw.update(do_sample=False)
    with autocast(cfg.bf16):
        seqs = model.generate(**enc, **kw)
    new = seqs[:, enc["input_ids"].shape[1] :]
    return [trim_at_eos(row.tolist(), eos) for row in new]
