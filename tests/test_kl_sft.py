"""KL-regularised conditional SFT: the loss's maths, the paired rows (reference reads the plain
prompt, same answer tokens), condition dropout, frozen embeddings, and a tiny run where the KL term
keeps the policy nearer the base than plain SFT does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from condtune.config import ConfigError, parse
from condtune.kl import token_kl
from condtune.kl_sft import PairedCollator, answer_logits, kl_regularised_loss, sequence_logprob, tag_contrast_loss
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard
from condtune.sft_rows import sft_dataset
from condtune.tags import Binning, TagFormat


@pytest.fixture(scope="module")
def tok(tiny_lm):
    from condtune.modeling import load_tokenizer

    return load_tokenizer(tiny_lm)


def test_loss_terms_match_their_definitions():
    torch.manual_seed(0)
    V = 11
    labels = torch.tensor([[-100, -100, -100, 4, 5], [-100, -100, 7, 8, -100]])  # tagged rows: longer prompts
    ref_labels = torch.tensor([[-100, 4, 5, -100, -100], [-100, 7, 8, -100, -100]])  # the plain prompt: one token
    logits = torch.randn(2, 5, V, requires_grad=True)
    ref_logits = torch.randn(2, 5, V)
    r = kl_regularised_loss(logits, labels, ref_logits=ref_logits, ref_labels=ref_labels, kl_coef=0.5, entropy_coef=0.1)
    pol = torch.stack([logits[0, 2], logits[0, 3], logits[1, 1], logits[1, 2]])  # positions predicting 4, 5, 7, 8
    ref = torch.stack([ref_logits[0, 0], ref_logits[0, 1], ref_logits[1, 0], ref_logits[1, 1]])
    nll = F.cross_entropy(pol, torch.tensor([4, 5, 7, 8]))
    p, logp, logq = F.softmax(pol, -1), F.log_softmax(pol, -1), F.log_softmax(ref, -1)
    kl = (p * (logp - logq)).sum(-1).mean()
    ent = -(p * logp).sum(-1).mean()
    assert torch.allclose(r.nll, nll) and torch.allclose(r.kl, kl) and torch.allclose(r.entropy, ent)
    assert torch.allclose(r.loss, nll + 0.5 * kl - 0.1 * ent)
    r.loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() > 0  # prompt positions get no gradient


def test_kl_is_zero_when_policy_equals_reference_and_vocabularies_may_differ():
    torch.manual_seed(1)
    ref_logits = torch.randn(1, 4, 9)
    labels = torch.tensor([[-100, -100, 3, 2]])
    extra = torch.full((1, 4, 2), -30.0)  # two added tag tokens the policy never predicts
    r = kl_regularised_loss(
        torch.cat([ref_logits, extra], -1), labels, ref_logits=ref_logits, ref_labels=labels, kl_coef=1.0
    )
    assert r.kl.item() < 1e-6
    pol, _ = answer_logits(torch.cat([ref_logits, extra], -1), labels)
    assert torch.allclose(
        r.kl, token_kl(F.log_softmax(pol, -1), F.log_softmax(answer_logits(ref_logits, labels)[0], -1)).mean()
    )


def test_misaligned_rows_are_an_error():
    x = torch.randn(1, 4, 5)
    with pytest.raises(ValueError, match="different answer tokens"):
        kl_regularised_loss(
            x, torch.tensor([[-100, -100, 1, 2]]), ref_logits=x, ref_labels=torch.tensor([[-100, 1, 2, 3]]), kl_coef=1.0
        )


def _rows(n=40):
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[n // 2, n // 2]), TagFormat())
    df = pd.DataFrame(
        {
            "prompt": ["Movie review:"] * n,
            "completion": ["Good fun.", "Dull."] * (n // 2),
            "score_bin": [1, 0] * (n // 2),
        }
    )
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    return df, card


def _tiny_sft(**kw) -> SFTSettings:
    """The short, fast-learning run of the tiny-model tests: 8 steps at lr 3e-2, no warm-up, no dropout."""
    base = dict(
        max_steps=8,
        per_device_train_batch_size=4,
        learning_rate=3e-2,
        max_length=32,
        save_steps=100,
        warmup_ratio=0.0,
        condition_dropout=0.0,
    )
    return SFTSettings(**{**base, **kw})


def test_reference_rows_read_the_plain_prompt_and_the_same_answer(tok):
    df, _ = _rows(4)
    ds = sft_dataset(df, tok, max_length=64, with_reference=True)
    plain = tok("Movie review:", add_special_tokens=False)["input_ids"]
    tagged = tok(df["tagged_prompt"][0], add_special_tokens=False)["input_ids"]
    answer = tok(" Good fun.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert ds[0]["input_ids"] == tagged + answer and ds[0]["ref_input_ids"] == plain + answer
    assert [t for t in ds[0]["labels"] if t != -100] == [t for t in ds[0]["ref_labels"] if t != -100] == answer
    short = sft_dataset(df, tok, max_length=len(tagged) + 2, with_reference=True)[
        0
    ]  # truncation cuts both to the same answer
    assert [t for t in short["ref_labels"] if t != -100] == answer[:2]
    batch = PairedCollator(tok.pad_token_id)([ds[0], ds[1]])
    assert (
        batch["ref_input_ids"].shape[0] == 2 and (batch["ref_labels"] != -100).sum() == (batch["labels"] != -100).sum()
    )


def test_condition_dropout_trains_a_share_of_rows_without_tags(tok):
    df, _ = _rows(400)
    ds = sft_dataset(df, tok, max_length=64, condition_dropout=0.25, seed=3)
    plain = tok("Movie review:", add_special_tokens=False)["input_ids"]
    untagged = sum(r["input_ids"][: len(plain)] == plain for r in ds)
    assert 70 <= untagged <= 130  # ~100 of 400
    assert sft_dataset(df, tok, max_length=64, condition_dropout=0.25, seed=3)["input_ids"] == ds["input_ids"]  # seeded
    with pytest.raises(ValueError, match="untagged 'prompt'"):
        sft_dataset(df.drop(columns=["prompt"]), tok, max_length=64, condition_dropout=0.1)


@pytest.mark.parametrize(
    "bad",
    [
        "sft.kl_coef=-1",
        "sft.condition_dropout=1.0",
        "sft.learning_rate=0",
        "sft.max_steps=0",
        "sft.pairwise=-1",
        "sft.pairwise_pairs=0",
        "sft.pairwise_margin=-0.5",
    ],
)
def test_out_of_range_settings_name_the_key(bad):
    from condtune.commands.train import TrainConfig

    with pytest.raises(ConfigError, match=bad.split("=")[0].split(".")[1]):
        parse(TrainConfig, [bad])


def _mean_kl_to_base(model, base, tok, df) -> float:
    ds = sft_dataset(df, tok, max_length=64, with_reference=True)
    batch = PairedCollator(tok.pad_token_id)([ds[i] for i in range(8)])
    with torch.no_grad():
        pol = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ref = base(input_ids=batch["ref_input_ids"], attention_mask=batch["ref_attention_mask"]).logits
    return float(
        kl_regularised_loss(pol, batch["labels"], ref_logits=ref, ref_labels=batch["ref_labels"], kl_coef=1.0).kl
    )


def test_kl_term_keeps_the_policy_nearer_the_base(tmp_path, tiny_lm):
    from condtune.modeling import load_causal_lm

    df, card = _rows(32)
    base, tok = load_causal_lm(tiny_lm)
    kls = {}
    for kl_coef in (0.0, 5.0):
        model, tok = load_causal_lm(tiny_lm)
        s = _tiny_sft(kl_coef=kl_coef)
        stats = train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / f"kl{kl_coef}", base=str(tiny_lm))
        assert stats["steps"] == 8 and stats["final_loss"] == stats["final_loss"]  # finite
        kls[kl_coef] = _mean_kl_to_base(model.cpu(), base, tok, df)  # the trainer may have moved it to a GPU
    assert kls[5.0] < 0.5 * kls[0.0], kls


def test_frozen_embeddings_stay_put(tmp_path, tiny_lm):
    from condtune.modeling import load_causal_lm

    df, card = _rows(16)
    model, tok = load_causal_lm(tiny_lm)
    before = model.get_input_embeddings().weight.detach().clone()
    s = SFTSettings(
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        max_length=32,
        save_steps=100,
        warmup_ratio=0.0,
        freeze_embeddings=True,
    )
    train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / "frozen", base=str(tiny_lm))
    assert torch.equal(model.get_input_embeddings().weight[: before.shape[0]].cpu(), before)


def test_frozen_lower_layers_stay_put_and_the_upper_ones_learn(tmp_path, tiny_lm):
    from condtune.modeling import load_causal_lm

    df, card = _rows(16)
    model, tok = load_causal_lm(tiny_lm)
    n = len(model.model.layers)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    s = SFTSettings(
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        max_length=32,
        save_steps=100,
        warmup_ratio=0.0,
        freeze_layers=n - 1,
    )
    train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / "frozen", base=str(tiny_lm))
    after = {k: v.cpu() for k, v in model.state_dict().items()}
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(f"model.layers.{n - 1}.") or k.startswith("model.norm") for k in moved), moved
    with pytest.raises(ValueError, match="only"):
        train_conditional(
            load_causal_lm(tiny_lm)[0],
            tok,
            df,
            card=card,
            s=replace(s, freeze_layers=n),
            out_dir=tmp_path / "all",
            base=str(tiny_lm),
        )


def test_tag_contrast_is_a_two_way_bayes_classifier_of_the_tag():
    torch.manual_seed(2)
    logits, alt_logits = torch.randn(2, 5, 7, requires_grad=True), torch.randn(2, 6, 7)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, -100, -100, 5, 6]])
    alt_labels = torch.tensor([[-100, -100, -100, 3, 4, -100], [-100, -100, -100, -100, 5, 6]])  # longer prompts
    own, other = sequence_logprob(logits, labels), sequence_logprob(alt_logits, alt_labels)
    lp, alp = F.log_softmax(logits, -1), F.log_softmax(alt_logits, -1)
    assert torch.allclose(own, torch.stack([lp[0, 1, 3] + lp[0, 2, 4], lp[1, 2, 5] + lp[1, 3, 6]]))
    assert torch.allclose(other, torch.stack([alp[0, 2, 3] + alp[0, 3, 4], alp[1, 3, 5] + alp[1, 4, 6]]))
    w = torch.tensor([1.0, 0.0])  # the second row lost its tag (condition dropout): no contrast
    loss = tag_contrast_loss(own, other, w)
    p_own = own.exp()[0] / (own.exp()[0] + other.exp()[0])  # P(its own tag | answer), uniform prior
    assert torch.allclose(loss, -torch.log(p_own))
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_contrast_rows_put_the_same_answer_under_another_bins_tag(tok):
    df, card = _rows(40)
    ds = sft_dataset(df, tok, max_length=64, condition_dropout=0.25, seed=1, contrast=card)
    for r, b in zip(ds, df["score_bin"]):
        assert [t for t in r["alt_labels"] if t != -100] == [t for t in r["labels"] if t != -100]
        other_prompt = tok(card.prefix(bin_index=1 - b) + "Movie review:", add_special_tokens=False)["input_ids"]
        assert r["alt_input_ids"][: len(other_prompt)] == other_prompt  # two bins: the other one
    dropped = [r["alt_weight"] == 0.0 for r in ds]
    assert 0 < sum(dropped) < len(ds)
    batch = PairedCollator(tok.pad_token_id)([ds[0], ds[1]])
    assert batch["alt_input_ids"].shape[0] == 2 and batch["alt_weight"].tolist() == [
        ds[0]["alt_weight"],
        ds[1]["alt_weight"],
    ]
    with pytest.raises(ValueError, match="score_bin"):
        sft_dataset(df.drop(columns=["score_bin"]), tok, max_length=64, contrast=card)


def test_mirror_pairs_contrast_each_bin_with_its_mirror_and_the_middle_with_any_other(tok):
    k, n = 5, 50
    card = TagCard(
        Binning(edges=[-1.5, -0.5, 0.5, 1.5], centers=[-2.0, -1.0, 0.0, 1.0, 2.0], counts=[10] * k), TagFormat()
    )
    df = pd.DataFrame({"prompt": ["Movie review:"] * n, "completion": ["Fine."] * n, "score_bin": list(range(k)) * 10})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]

    def other_bins(pairs: str) -> list[int]:
        ds = sft_dataset(df, tok, max_length=64, seed=3, contrast=card, contrast_pairs=pairs)
        heads = {
            b: tok(card.prefix(bin_index=b) + "Movie review:", add_special_tokens=False)["input_ids"] for b in range(k)
        }
        return [next(b for b, h in heads.items() if r["alt_input_ids"][: len(h)] == h) for r in ds]

    mirror, any_ = other_bins("mirror"), other_bins("any")
    for b, m, a in zip(df["score_bin"], mirror, any_):
        assert m != b and a != b
        if b != k // 2:
            assert m == k - 1 - b
    assert len({a for b, a in zip(df["score_bin"], any_) if b == 0}) > 1  # "any" draws among the other bins
    assert len({m for b, m in zip(df["score_bin"], mirror) if b == k // 2}) > 1


def test_soft_contrast_labels_rank_the_answers_of_one_bin():
    from condtune.kl_sft import soft_contrast_labels

    z = np.array([0.6, 1.0, 2.5])  # three answers of the top bin (centre 2), contrasted with the bottom (-2)
    q = soft_contrast_labels(z, [2.0] * 3, [-2.0] * 3, 1.0)
    assert np.all(np.diff(q) > 0) and q[-1] > 0.99  # the better answer, the surer label
    assert soft_contrast_labels(0.0, 2.0, -2.0, 1.0) == pytest.approx(0.5)  # the midpoint: either bin
    assert soft_contrast_labels(-0.5, -1.0, 0.0, 2.0) == pytest.approx(0.5)  # midpoint again
    assert soft_contrast_labels(1.0, 2.0, -2.0, 0.01) == pytest.approx(1.0)  # T -> 0: the hard label
    assert soft_contrast_labels(-1.0, -2.0, 2.0, 1.0) == pytest.approx(soft_contrast_labels(1.0, 2.0, -2.0, 1.0))
    with pytest.raises(ValueError, match="T > 0"):
        soft_contrast_labels(z, 2.0, -2.0, 0.0)


def test_the_contrast_loss_with_a_soft_label_is_its_cross_entropy():
    own, other = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0])
    q, w = torch.tensor([0.8, 0.3]), torch.ones(2)
    p = torch.sigmoid(own - other)
    want = -(q * p.log() + (1 - q) * (1 - p).log()).mean()
    assert torch.allclose(tag_contrast_loss(own, other, w, q), want)
    assert torch.allclose(tag_contrast_loss(own, other, w, torch.ones(2)), tag_contrast_loss(own, other, w))


def test_soft_contrast_rows_carry_the_label_of_their_score(tok):
    df, card = _rows(40)
    df["score"] = np.linspace(-2.0, 2.0, len(df))
    hard = sft_dataset(df, tok, max_length=64, seed=1, contrast=card)
    assert {r["alt_target"] for r in hard} == {1.0}
    soft = sft_dataset(df, tok, max_length=64, seed=1, contrast=card, contrast_temperature=1.0)
    c = np.asarray(card.binning.centers)
    for r, z, b in zip(soft, df["score"], df["score_bin"]):
        assert r["alt_target"] == pytest.approx(1 / (1 + np.exp(-(c[b] - c[1 - b]) * (z - (c[b] + c[1 - b]) / 2))))
    batch = PairedCollator(tok.pad_token_id)([soft[0], soft[1]])
    assert batch["alt_target"].tolist() == pytest.approx([soft[0]["alt_target"], soft[1]["alt_target"]])
    with pytest.raises(ValueError, match="'score'"):
        sft_dataset(df.drop(columns=["score"]), tok, max_length=64, contrast=card, contrast_temperature=1.0)


def _tag_margin(model, tok, card) -> float:
    """How much more likely 'Good fun.' is under the top tag than under the bottom tag, and 'Dull.' the reverse."""
    from condtune.kl_sft import sequence_logprob as seq

    def lp(b, text):
        ids = tok(card.prefix(bin_index=b) + "Movie review:", add_special_tokens=False)["input_ids"]
        ans = tok(" " + text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        x = torch.tensor([ids + ans])
        with torch.no_grad():
            return float(seq(model(input_ids=x).logits, torch.tensor([[-100] * len(ids) + ans])))

    return (lp(1, "Good fun.") - lp(0, "Good fun.")) + (lp(0, "Dull.") - lp(1, "Dull."))


def test_tag_contrast_teaches_the_tag_faster(tmp_path, tiny_lm):
    """Same data, steps and lr: plain conditional SFT barely separates the two tags' likelihoods of the
    two answers; with the contrast term the separation is large (measured: 0.004 vs 1.56 nats)."""
    from condtune.modeling import load_causal_lm

    df, card = _rows(32)
    margins = {}
    for coef in (0.0, 5.0):
        model, tok = load_causal_lm(tiny_lm)
        s = _tiny_sft(per_device_train_batch_size=8, tag_contrast=coef)
        assert (
            train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / f"c{coef}", base=str(tiny_lm))["steps"]
            == 8
        )
        margins[coef] = _tag_margin(model.cpu(), tok, card)  # the trainer may have moved it to a GPU
    assert margins[5.0] > margins[0.0] + 1.0, margins


def test_within_prompt_pairs_pair_only_answers_to_one_prompt_beyond_the_margin():
    from condtune.kl_sft import within_prompt_pairs

    scores = [2.0, 0.0, 1.0, 5.0, -5.0]
    groups = ["a", "a", "a", "b", "c"]  # b and c: one answer each, far apart, never paired
    got = {tuple(p) for p in within_prompt_pairs(scores, groups, margin=0.5)}
    assert got == {(0, 1), (0, 2), (2, 1)}
    assert {tuple(p) for p in within_prompt_pairs(scores, groups, margin=1.5)} == {(0, 1)}
    assert within_prompt_pairs(scores, groups, margin=3.0).shape == (0, 2)
    with pytest.raises(ValueError, match="margin"):
        within_prompt_pairs(scores, groups, margin=-1.0)
    many = np.random.default_rng(0).normal(size=3000)  # thousands of texts under one prompt: sampled partners
    big = within_prompt_pairs(many, np.zeros(3000), margin=0.5, max_per_answer=16)
    assert 0 < len(big) <= 3000 * 16 and (many[big[:, 0]] - many[big[:, 1]] > 0.5).all()
    assert len(np.unique(big, axis=0)) == len(big)


def test_pairwise_loss_is_bradley_terry_on_the_contrast():
    from condtune.kl_sft import pairwise_contrast_loss

    better = torch.tensor([1.0, -0.5], requires_grad=True)
    worse = torch.tensor([0.0, 0.5])
    loss = pairwise_contrast_loss(better, worse)
    assert torch.allclose(loss, -(F.logsigmoid(torch.tensor(1.0)) + F.logsigmoid(torch.tensor(-1.0))) / 2)
    loss.backward()
    assert (better.grad < 0).all()  # descending the loss raises the better answer's contrast
    assert pairwise_contrast_loss(torch.tensor([9.0]), torch.tensor([-9.0])) < 1e-6


def _answers():
    """Two prompts with two answers each: the pairwise term's table."""
    return pd.DataFrame(
        {
            "prompt": ["Movie review:", "Movie review:", "Film:", "Film:"],
            "completion": ["Good fun.", "Dull.", "Good fun.", "Dull."],
            "score": [1.0, -1.0, 0.8, -0.9],
        }
    )


def test_pair_bank_reads_each_pair_under_the_top_and_the_bottom_tag(tok):
    from condtune.sft_rows import pair_bank, scored_pairs

    _, card = _rows(4)
    answers = _answers()
    found = scored_pairs(answers, 0.5)
    assert {tuple(p) for p in found} == {(0, 1), (2, 3)}
    bank = pair_bank(answers, found, tok, card, max_length=64)
    batch = bank.batch(step=3, n=2, seed=[0, 0])
    assert batch["input_ids"].shape[0] == 8

    def row(i):
        ids, lab = batch["input_ids"][i].tolist(), batch["labels"][i].tolist()
        n = int(batch["attention_mask"][i].sum())
        return ids[:n], [t for t in lab if t != -100]

    enc = lambda t: tok(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    for j in range(2):  # better under top, better under bottom, worse under top, worse under bottom
        (bt, ab), (bb, ab2), (wt, aw), (wb, aw2) = (row(q * 2 + j) for q in range(4))
        assert ab == ab2 and aw == aw2 and ab != aw
        assert ab == enc(" Good fun.") + [tok.eos_token_id] and aw == enc(" Dull.") + [tok.eos_token_id]
        prompt = "Movie review:" if bt[: -len(ab)] == enc(card.prefix(bin_index=1) + "Movie review:") else "Film:"
        assert bt[: -len(ab)] == enc(card.prefix(bin_index=1) + prompt)
        assert bb[: -len(ab)] == enc(card.prefix(bin_index=0) + prompt)
        assert wt[: -len(aw)] == enc(card.prefix(bin_index=1) + prompt)
    again = bank.batch(step=3, n=2, seed=[0, 0])  # the step and the seed fix the draw: a resume sees the same pairs
    assert torch.equal(again["input_ids"], batch["input_ids"])


def test_bad_pair_tables_name_the_problem():
    from condtune.sft_rows import scored_pairs

    with pytest.raises(ValueError, match=r"pairs.jsonl: the pairwise term needs the columns \['score'\]"):
        scored_pairs(_answers().drop(columns=["score"]), 0.5, source="pairs.jsonl")
    bad = _answers().astype({"score": object})
    bad.loc[2, "score"] = "high"
    with pytest.raises(ValueError, match="row 2: 'score' is 'high'"):
        scored_pairs(bad, 0.5)
    with pytest.raises(ValueError, match="no two answers to one prompt differ"):
        scored_pairs(_answers().drop_duplicates("prompt"), 0.5)


def test_pairwise_term_teaches_the_contrast_to_rank_a_prompts_answers(tmp_path, tiny_lm):
    """The SFT rows say nothing about which answer is better (one neutral answer under both tags);
    only the pairwise term's pairs do. With it the top-against-bottom contrast ranks "Good fun." over
    "Dull."; without it, it does not learn to."""
    from condtune.modeling import load_causal_lm

    df, card = _rows(32)
    df["completion"] = "It was a film."
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    margins = {}
    for coef in (0.0, 5.0):
        model, tok = load_causal_lm(tiny_lm)
        s = _tiny_sft(pairwise=coef, pairwise_pairs=2)
        out = tmp_path / f"p{coef}"
        stats = train_conditional(model, tok, df, card=card, s=s, out_dir=out, base=str(tiny_lm), pairs=_answers())
        assert stats["steps"] == 8
        margins[coef] = _tag_margin(model.cpu(), tok, card)
    assert margins[5.0] > margins[0.0] + 1.0, margins
    with pytest.raises(ConfigError, match="sft.pairwise > 0 needs"):
        train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / "none", base=str(tiny_lm))
    other = _answers().assign(score=[1.0, -1.0, -0.9, 0.8])  # another table is another run
    with pytest.raises(ConfigError, match="changed: \\['pairs'\\]"):
        train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / "p5.0", base=str(tiny_lm), pairs=other)
    from condtune.commands.train import main
    from condtune.relabel import write_tagged

    data = tmp_path / "tagged.jsonl"
    write_tagged(df, card, data)
    with pytest.raises(ConfigError, match="needs pairs_data="):
        main([f"data={data}", "sft.pairwise=1", f"output_dir={tmp_path / 'cli'}"])
    _answers().drop(columns=["score"]).to_json(tmp_path / "answers.jsonl", orient="records", lines=True)
    with pytest.raises(ConfigError, match="answers.jsonl: the pairwise term needs the columns"):
        main(
            [
                f"data={data}",
                "sft.pairwise=1",
                f"pairs_data={tmp_path / 'answers.jsonl'}",
                f"output_dir={tmp_path / 'cli'}",
            ]
        )
