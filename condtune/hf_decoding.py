"""Decode a condtune policy with plain ``transformers``: a logits processor for ``model.generate``.

:func:`condtune_logits_processor` turns a request (the score, tags, guidance and anchoring of
:meth:`condtune.generate.ConditionalPolicy.generate`) into a :class:`ConditionalLogitsProcessor` and
the tagged prompts to hand ``generate()``. The processor is condtune's own sampler's
(:class:`condtune.sampling.ShapedSampling`: :func:`condtune.sampling.shape_logprobs` over the
scores, with the unconditional and anchor :class:`condtune.sampling.Branch` es), so with the same
seed ``generate()`` draws token for token what ``policy.generate`` draws::

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from condtune.generate import ConditionalPolicy
    from condtune.hf_decoding import condtune_logits_processor
    from condtune.saved_policy import load_policy_card

    model = AutoModelForCausalLM.from_pretrained("runs/policy", dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained("runs/policy")
    card, base = load_policy_card("runs/policy")
    policy = ConditionalPolicy(model, tok, card, base=base)  # base: the anchor of anchored=True
    processor, inputs = condtune_logits_processor(policy, ["Movie review:"], score=3.0, guidance_scale=2.0, top_p=0.9)
    torch.manual_seed(0)
    out = model.generate(**inputs, logits_processor=[processor], do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                         max_new_tokens=48, num_return_sequences=4, pad_token_id=tok.pad_token_id)
    print(tok.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True))

Temperature and top-p belong to the processor (``temperature=`` and ``top_p=`` of
:func:`condtune_logits_processor`): condtune applies them after guidance, inside
:func:`~condtune.sampling.shape_logprobs`, and calls ``generate()`` with its own warpers off, which
is what ``generate()`` must be given too: ``do_sample=True, temperature=1.0, top_p=1.0, top_k=0``
(``top_k`` defaults to 50 in ``generate()``, which would cut the distribution), or
``do_sample=False`` for greedy decoding of the guided distribution (``temperature=0``). Set there
instead, the same temperature and top-p give the same distribution but not the same bits (and set
in both places they apply twice).

The same samples as ``policy.generate(..., seed=s)`` also need: the same prompts in one batch
(``sampling.batch_size`` at least prompts x ``num_return_sequences``), the model in the dtype
condtune loads (float32), and, where condtune samples under bf16 autocast (``sampling.bf16=None``
on a GPU or a CPU with bf16), ``generate()`` under :func:`condtune.modeling.autocast` too
(``sampling.bf16=False``: no autocast). Anchored decoding runs ``policy.base_model()`` inside
``generate()``, moved to the policy's device.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from transformers import LogitsProcessor

from condtune.generate import ConditionalPolicy, check_request
from condtune.sampling import Branch, SamplingConfig, ShapedSampling

__all__ = ["ConditionalLogitsProcessor", "condtune_logits_processor"]


class ConditionalLogitsProcessor(ShapedSampling, LogitsProcessor):
    """A ``transformers`` logits processor that samples as condtune's sampler does: it replaces the
    scores by :func:`condtune.sampling.shape_logprobs` of them (guidance, then ``temperature``, then
    ``top_p``), the one definition of condtune's sampling distribution.

    ``ConditionalLogitsProcessor(temperature, top_p, *, guidance=1.0, uncond=None, anchor=None)``:
    ``uncond`` is the :class:`~condtune.sampling.Branch` of the policy reading the prompts without
    the score tag (or with the contrast score's), ``anchor`` the base model's on the plain prompts;
    each follows the sampled tokens with its own KV cache. Row i of ``generate()``'s batch is guided
    by row i of their prompts, or by row i // n when ``generate()`` repeats each prompt n times
    (``num_return_sequences``). For sampling and greedy decoding only (beam search and assisted
    decoding are refused); one processor serves repeated ``generate()`` calls on the prompts it was
    built for. Build it with :func:`condtune_logits_processor`, which checks the request first.

    ``generate()``'s own warpers must stay off (``temperature=1.0, top_p=1.0, top_k=0``): see
    :mod:`condtune.hf_decoding`.
    """


def condtune_logits_processor(
    policy: ConditionalPolicy,
    prompts: Sequence[str],
    *,
    score: float | None = None,
    bin_index: int | None = None,
    tags: Mapping[str, str] | None = None,
    guidance_scale: float = 1.0,
    anchored: bool = False,
    contrast_score: float | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
) -> tuple[ConditionalLogitsProcessor, dict[str, torch.Tensor]]:
    """The processor and the ``generate()`` inputs of a request, as ``policy.generate`` reads it.

    The request (``score`` or ``bin_index``, ``tags``, ``guidance_scale``, ``anchored``,
    ``contrast_score``: :meth:`~condtune.generate.ConditionalPolicy.generate`'s meanings) is checked
    by :func:`condtune.generate.check_request` first, so a request condtune refuses is refused here
    with the same :class:`~condtune.config.ConfigError`; a ``temperature`` < 0 or a ``top_p`` outside
    (0, 1] is refused as :class:`~condtune.sampling.SamplingConfig` refuses it (a ValueError).
    ``temperature=0`` is greedy decoding of the guided distribution (``generate(do_sample=False)``).
    ``max_new_tokens``: the longest completion to be asked of ``generate()``, checked with the prompts
    against the model's context (None: the prompts alone).

    Returns ``(processor, inputs)``: ``inputs`` holds ``input_ids`` and ``attention_mask``, the
    tagged prompts left padded on the policy's device (for ``generate(**inputs, ...)``); pass
    ``num_return_sequences`` to ``generate()`` for several completions a prompt. Anchored decoding
    loads the base model (``policy.base_model()``) here.
    """
    sampling = SamplingConfig(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens or 1)
    check_request(
        policy,
        prompts,
        score=score,
        bin_index=bin_index,
        tags=tags,
        sampling=sampling,
        guidance_scale=guidance_scale,
        anchored=anchored,
        contrast_score=contrast_score,
    )
    tok = policy.tokenizer
    if tok.pad_token_id is None:
        raise ValueError("the policy's tokenizer has no pad token: set tokenizer.pad_token (condtune uses its EOS)")
    dev = next(policy.model.parameters()).device
    full = [policy.tagged(p, score=score, bin_index=bin_index, tags=tags) for p in prompts]
    inputs = _left_padded(tok, full, dev)
    uncond = anchor = None
    if guidance_scale != 1.0 or anchored:  # as ConditionalPolicy.generate hands sample() the request
        uncond = _left_padded(tok, [policy.tagged(p, score=contrast_score, tags=tags) for p in prompts], dev)
        uncond = Branch(policy.model, uncond["input_ids"], uncond["attention_mask"])
        if anchored:
            base = policy.base_model().to(dev).eval()  # it runs inside generate(), on the policy's device
            plain = _left_padded(tok, list(prompts), dev)
            anchor = Branch(base, plain["input_ids"], plain["attention_mask"])
    # greedy (temperature 0): the argmax of the guided distribution, which temperature and top-p keep
    t, p = (temperature, top_p) if temperature > 0 else (1.0, 1.0)
    return ConditionalLogitsProcessor(t, p, guidance=guidance_scale, uncond=uncond, anchor=anchor), inputs


def _left_padded(tokenizer, texts: Sequence[str], dev) -> dict[str, torch.Tensor]:
    """``texts`` as one left-padded batch on ``dev``, no special tokens added (as condtune's sampler
    encodes them), the tokenizer's padding side left as it was."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    return {"input_ids": enc["input_ids"].to(dev), "attention_mask": enc["attention_mask"].to(dev)}
