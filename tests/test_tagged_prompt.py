"""The tagged prompt has one builder (:func:`condtune.relabel.tagged_prompt`): the prompts conditional
SFT trains on and the prompts ``generate`` hands the sampler are the same text, byte for byte, for the
same request: the tagged prompt, the prompt without its score tag (condition dropout; guidance's
unconditional prompt) and the prompt under the mirrored bin's tag (the tag contrast; guidance's
``contrast_score``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import condtune.generate as gen
import condtune.online as online
import condtune.policy as pol
import condtune.sft_rows as sft_rows
from condtune.relabel import relabel, tagged_prompt
from condtune.sampling import SamplingConfig
from condtune.tags import TagFormat

K = 4


class Stop(Exception):
    """raised where training would start: the rows are built, nothing is trained"""


def relabelled(style: str = "text"):
    """12 relabelled rows and their card: 4 score bins (3 rows each) and a ``site`` attribute tag."""
    df = pd.DataFrame(
        {
            "prompt": ["Movie review:", "Film:", "Review of the film:"] * 4,
            "completion": [f"Answer number {i}." for i in range(12)],
            "site": ["imdb", "rotten"] * 6,
        }
    )
    scores = np.linspace(-1.0, 1.0, 12)
    return relabel(df, None, num_bins=K, tag_format=TagFormat(style=style), tag_columns=["site"], scores=scores)


def trained_prompts(tagged, card, tok, model, out_dir, monkeypatch) -> tuple[list[str], list[str], list[float]]:
    """What train_conditional trains each row on (condition dropout and the mirrored tag contrast on):
    the text of its prompt, of its contrast prompt, and the contrast weight (0 where the row lost its
    score tag), as sft_dataset tokenized them."""
    seen = {}

    def capture(df, tokenizer, max_length, **kw):
        seen.update(df=df, tokenizer=tokenizer, max_length=max_length, kw=kw)
        raise Stop

    real_rows = pol.sft_dataset
    monkeypatch.setattr(pol, "sft_dataset", capture)
    s = pol.SFTSettings(
        max_steps=1,
        per_device_train_batch_size=2,
        max_length=64,
        condition_dropout=0.5,
        tag_contrast=1.0,
        contrast_pairs="mirror",
    )
    with pytest.raises(Stop):
        pol.train_conditional(model, tok, tagged, card=card, s=s, out_dir=out_dir, base="tiny")

    texts: dict[tuple, set] = {}
    real_encode = sft_rows.encode

    def recording(tokenizer, text):
        ids = real_encode(tokenizer, text)
        texts.setdefault(tuple(ids), set()).add(text)
        return ids

    monkeypatch.setattr(sft_rows, "encode", recording)
    rows = real_rows(seen["df"], seen["tokenizer"], seen["max_length"], **seen["kw"])

    def prompt_text(ids, labels):
        n = labels.index(next(x for x in labels if x != -100))  # the masked prompt, then the answer
        (text,) = texts[tuple(ids[:n])]
        return text

    main = [prompt_text(r["input_ids"], r["labels"]) for r in rows]
    alt = [prompt_text(r["alt_input_ids"], r["alt_labels"]) for r in rows]
    return main, alt, list(rows["alt_weight"])


@pytest.mark.parametrize("style", ["text", "token"])
def test_training_rows_and_generate_read_the_same_prompts(tmp_path, tiny_lm, monkeypatch, style):
    from condtune.modeling import load_causal_lm

    tagged, card = relabelled(style)
    model, tok = load_causal_lm(tiny_lm)
    main, alt, weight = trained_prompts(tagged, card, tok, model, tmp_path / "run", monkeypatch)
    assert 0 < weight.count(0.0) < len(weight)  # some rows lost their score tag, others kept it

    fed = []
    monkeypatch.setattr(gen, "sample", lambda model, tok, prompts, **kw: fed.append((prompts, kw)))
    policy = gen.ConditionalPolicy(model, tok, card)
    centers = card.binning.centers
    for i, (p, b, t) in enumerate(zip(tagged["prompt"], tagged["score_bin"], tagged["tags"])):
        mirror = K - 1 - int(b)
        policy.generate([p], bin_index=int(b), tags=t, guidance_scale=2.0, progress=False)
        (cond,), kw = fed[-1]
        (uncond,) = kw["uncond_prompts"]
        policy.generate(
            [p], bin_index=int(b), tags=t, guidance_scale=2.0, contrast_score=centers[mirror], progress=False
        )
        (same,), kw = fed[-1]
        (contrast,) = kw["uncond_prompts"]

        assert same == cond == policy.tagged(p, bin_index=int(b), tags=t) == tagged["tagged_prompt"][i]
        assert main[i] == (uncond if weight[i] == 0.0 else cond)  # condition dropout: the guidance's unconditional
        assert alt[i] == contrast  # the mirrored bin's tag, as a contrast_score there asks for it
        assert uncond == tagged_prompt(card, p, tags=t) and contrast == tagged_prompt(card, p, bin_index=mirror, tags=t)
        if style == "text":  # a score on the raters' scale names its bin's tag
            policy.generate([p], score=centers[int(b)], tags=t, progress=False)
            assert fed[-1][0] == [cond]


def test_online_rounds_sample_at_the_prompt_generate_reads(tiny_lm, monkeypatch):
    from condtune.modeling import load_causal_lm

    _, card = relabelled()
    card.attributes = {}  # the online loop's pool has no attribute tags
    model, tok = load_causal_lm(tiny_lm)
    fed = []

    def fake_sample(model, tok, prompts, **kw):
        fed.append(list(prompts))
        n = len(prompts)
        return SimpleNamespace(texts=[["x"]] * n, response_ids=[[[1]]] * n, total_tokens=n)

    monkeypatch.setattr(online, "sample", fake_sample)
    monkeypatch.setattr(gen, "sample", fake_sample)
    prompts, bins = ["Movie review:", "Film:"] * 2, np.array([0, 0, K - 1, K - 1])
    online.sample_at_targets(model, tok, card, prompts=prompts, bins=bins, sampling=SamplingConfig(), seed=0)
    rounds = [p for batch in fed for p in batch]
    fed.clear()
    policy = gen.ConditionalPolicy(model, tok, card)
    for b in (0, K - 1):
        policy.generate(["Movie review:", "Film:"], bin_index=b, progress=False)
    assert rounds == [p for batch in fed for p in batch]
