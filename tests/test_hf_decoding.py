"""A condtune policy decodes inside a plain ``transformers`` ``model.generate`` (condtune.hf_decoding):
with :class:`ConditionalLogitsProcessor` and the same seed, ``generate()`` draws token for token what
``ConditionalPolicy.generate`` draws, for a plain request, classifier-free guidance and guidance
anchored on the base model against a contrast score, at temperature 1 and at 0.7 with top-p 0.9, under
bf16 autocast and greedily too; a request condtune refuses is refused here with the same error."""

from __future__ import annotations

import pytest
import torch

from condtune.config import ConfigError
from condtune.generate import ConditionalPolicy
from condtune.hf_decoding import ConditionalLogitsProcessor, condtune_logits_processor
from condtune.modeling import autocast
from condtune.relabel import TagCard
from condtune.sampling import SamplingConfig, trim_at_eos
from condtune.tags import Binning, TagFormat

PROMPTS = ["Movie review:", "Write a short review of the film"]  # two lengths: left padding in the batch
N = 2  # completions a prompt: generate()'s num_return_sequences
STEPS = 10

REQUESTS = {
    "plain": dict(score=3.0, tags={"domain": "movie"}),
    "guided": dict(score=3.0, guidance_scale=2.0),
    "anchored_contrast": dict(score=3.0, anchored=True, contrast_score=-3.0, tags={"domain": "book"}),
}
DECODES = {"t1": dict(temperature=1.0, top_p=1.0), "t0.7_p0.9": dict(temperature=0.7, top_p=0.9)}


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory, tiny_lm) -> ConditionalPolicy:
    """A tiny "trained" policy on tiny_lm: 4 score bins and a domain tag written as new special tokens
    (so its vocabulary is wider than its base's), each tag token its own random embedding, and every
    weight moved off the base's (so anchoring on the base changes the distribution)."""
    from condtune.modeling import load_causal_lm
    from condtune.saved_policy import save_policy
    from condtune.sft_model import add_tag_tokens

    model, tok = load_causal_lm(tiny_lm)
    card = TagCard(
        Binning(edges=[-2.0, 0.0, 2.0], centers=[-3.0, -1.0, 1.0, 3.0], counts=[3, 3, 3, 3]),
        TagFormat("token"),
        {"domain": ["book", "movie"]},
    )
    n_old = model.get_input_embeddings().weight.shape[0]
    assert add_tag_tokens(model, tok, card.tag_format.special_tokens(card.binning.k, card.attributes)) > 0
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[n_old:] = torch.randn(emb[n_old:].shape, generator=gen) * emb[:n_old].std()
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    out = save_policy(model, tok, card, out_dir=tmp_path_factory.mktemp("hf_decoding") / "policy", base=str(tiny_lm))
    return ConditionalPolicy.load(out)


def condtune_samples(policy, request, *, seed, bf16=False, n=N, **decode) -> list[list[int]]:
    """What condtune's own sampler draws (one batch), each completion's token ids up to its EOS."""
    cfg = SamplingConfig(max_new_tokens=STEPS, batch_size=16, bf16=bf16, **decode)
    got = policy.generate(PROMPTS, num_return_sequences=n, sampling=cfg, seed=seed, progress=False, **request)
    return [ids for row in got.response_ids for ids in row]


def hf_samples(policy, request, *, seed, processor=None, inputs=None, n=N, **generate_kw) -> list[list[int]]:
    """What plain ``model.generate`` draws with the processor (generate's own warpers off)."""
    decode = {k: generate_kw.pop(k) for k in ("temperature", "top_p") if k in generate_kw}
    if processor is None:
        processor, inputs = condtune_logits_processor(policy, PROMPTS, max_new_tokens=STEPS, **request, **decode)
    tok = policy.tokenizer
    kw = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0) | generate_kw
    torch.manual_seed(seed)
    out = policy.model.generate(
        **inputs,
        logits_processor=[processor],
        max_new_tokens=STEPS,
        num_return_sequences=n,
        pad_token_id=tok.pad_token_id,
        **kw,
    )
    return [trim_at_eos(row.tolist(), tok.eos_token_id) for row in out[:, inputs["input_ids"].shape[1] :]]


@pytest.mark.parametrize("decode", DECODES.values(), ids=DECODES.keys())
@pytest.mark.parametrize("request_", REQUESTS.values(), ids=REQUESTS.keys())
def test_generate_with_the_processor_draws_what_condtune_draws(tiny_policy, request_, decode):
    want = condtune_samples(tiny_policy, request_, seed=7, **decode)
    assert len(want) == len(PROMPTS) * N and all(want)
    assert hf_samples(tiny_policy, request_, seed=7, **decode) == want


def test_the_requests_sample_differently(tiny_policy):
    """The equalities above are not vacuous: with one seed, each kind of guidance and the temperature and
    top-p change the samples."""
    drawn = [tuple(map(tuple, condtune_samples(tiny_policy, r, seed=7))) for r in REQUESTS.values()]
    drawn.append(tuple(map(tuple, condtune_samples(tiny_policy, REQUESTS["plain"], seed=7, **DECODES["t0.7_p0.9"]))))
    assert len(set(drawn)) == len(drawn)


def test_under_bf16_autocast_too(tiny_policy):
    """Where condtune samples under bf16 autocast (sampling.bf16=None), generate() under the same autocast."""
    request = REQUESTS["anchored_contrast"]
    want = condtune_samples(tiny_policy, request, seed=3, bf16=None)
    with autocast(None):
        assert hf_samples(tiny_policy, request, seed=3) == want


def test_greedy_decoding_of_the_guided_distribution(tiny_policy):
    request = REQUESTS["guided"]
    want = condtune_samples(tiny_policy, request, seed=0, n=1, temperature=0.0)
    assert hf_samples(tiny_policy, request, seed=0, n=1, temperature=0.0, do_sample=False) == want
    assert want != condtune_samples(tiny_policy, REQUESTS["plain"], seed=0, n=1, temperature=0.0)


def test_one_processor_serves_repeated_generate_calls(tiny_policy):
    request = REQUESTS["anchored_contrast"]
    processor, inputs = condtune_logits_processor(tiny_policy, PROMPTS, **request)
    assert isinstance(processor, ConditionalLogitsProcessor)
    assert inputs["input_ids"].shape[0] == len(PROMPTS) and inputs["attention_mask"][:, -1].all()  # left padded
    first = hf_samples(tiny_policy, request, seed=5, processor=processor, inputs=inputs)
    assert hf_samples(tiny_policy, request, seed=5, processor=processor, inputs=inputs) == first
    assert first == condtune_samples(tiny_policy, request, seed=5)


def test_generates_own_warpers_must_stay_off(tiny_policy):
    """generate()'s default top_k (50) cuts the distribution after the processor: not condtune's samples."""
    request = REQUESTS["guided"]
    want = condtune_samples(tiny_policy, request, seed=7)
    assert hf_samples(tiny_policy, request, seed=7, top_k=50) != want


def test_beam_search_is_refused(tiny_policy):
    processor, inputs = condtune_logits_processor(tiny_policy, PROMPTS[:1], **REQUESTS["guided"])
    with pytest.raises(ValueError, match="not the last step's plus one token"):
        tiny_policy.model.generate(
            **inputs, logits_processor=[processor], do_sample=False, num_beams=3, max_new_tokens=STEPS, top_k=0
        )


BAD = {
    "guidance without a score": dict(guidance_scale=2.0),
    "anchored without a score": dict(anchored=True),
    "non-finite guidance": dict(score=3.0, guidance_scale=float("nan")),
    "negative guidance": dict(score=3.0, guidance_scale=-1.0),
    "bin out of range": dict(bin_index=4),
    "score and bin": dict(score=3.0, bin_index=1),
    "unknown tag": dict(score=3.0, tags={"site": "imdb"}),
    "unknown tag value": dict(score=3.0, tags={"domain": "poem"}),
    "forging tag value": dict(score=3.0, tags={"domain": "movie\nRating: 4"}),
    "contrast in the same bin": dict(score=3.0, guidance_scale=2.0, contrast_score=2.5),
    "contrast without guidance": dict(score=3.0, contrast_score=-3.0),
}


@pytest.mark.parametrize("request_", BAD.values(), ids=BAD.keys())
def test_a_bad_request_is_refused_as_condtune_refuses_it(tiny_policy, request_):
    with pytest.raises(ConfigError) as own:
        tiny_policy.generate(PROMPTS, progress=False, **request_)
    with pytest.raises(ConfigError) as here:
        condtune_logits_processor(tiny_policy, PROMPTS, **request_)
    assert str(here.value) == str(own.value)


@pytest.mark.parametrize(
    "decode, says", [(dict(temperature=-1.0), "temperature"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p")]
)
def test_a_bad_temperature_or_top_p_is_refused(tiny_policy, decode, says):
    """As SamplingConfig refuses it on condtune's own path."""
    with pytest.raises(ValueError, match=f"{says}=.* is out of range"):
        condtune_logits_processor(tiny_policy, PROMPTS, score=3.0, **decode)


def test_prompts_beyond_the_context_are_refused(tiny_policy):
    limit = tiny_policy.model.config.max_position_embeddings
    with pytest.raises(ConfigError, match="max_new_tokens"):
        condtune_logits_processor(tiny_policy, PROMPTS, score=3.0, max_new_tokens=limit)
