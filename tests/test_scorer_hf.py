"""A saved scorer folder is also a plain transformers model: ``AutoModelForSequenceClassification`` (with
``trust_remote_code=True``, the folder's ``modeling_condtune_scorer.py``) and ``AutoTokenizer`` give, as
``logits[:, 0]``, the scores of ``Scorer.load(folder).score``, on the raters' scale; the encoder's weights
are stored once; folders saved before these files existed still load; saving never replaces a user's
README.md or config.json. Offline: everything loads from local folders."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

import condtune.scorer as S
import condtune.scorer_export as E

TEXTS = [
    "The film was great, lovely and fun.",
    "Dull.",
    "awful " * 40,  # longer than max_length: both sides cut it at the same token
    "It was boring and tedious, but the ending was superb.",
]


@pytest.fixture(scope="module")
def modules_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hf_modules"))


@pytest.fixture
def fp32(monkeypatch, modules_dir):
    """condtune's scores in float32 (it scores in bf16 autocast where the hardware has bf16), the folder's
    code copied under a temporary modules cache, and transformers' trust question answered "no" at once."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(S, "autocast", lambda: contextlib.nullcontext())
    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", modules_dir)
    monkeypatch.setattr(dmu, "TIME_OUT_REMOTE_CODE", 0)


def hf_scores(folder, texts, **tokenizer_kw) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, **tokenizer_kw)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        folder, trust_remote_code=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    model.eval()
    with torch.no_grad():
        out = model(**tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt"))
    assert out.logits.shape == (len(texts), 1)
    return out.logits[:, 0].double().numpy()


@pytest.fixture
def trained(ratings_file, tiny_encoder, tmp_path):
    from condtune.scorer import OptimConfig
    from condtune.scorer_training import ScorerTrainConfig, train_or_load

    columns = dataclasses.replace(ScorerTrainConfig().columns, rater_col="rater", item_col="item_id")
    assert (columns.score_min, columns.score_max) == (-4, 4)
    cfg = ScorerTrainConfig(
        ratings=str(ratings_file),
        backbone=str(tiny_encoder),
        columns=columns,
        max_length=12,
        optim=OptimConfig(num_train_epochs=1.0, per_device_train_batch_size=8, learning_rate=1e-3),
        output_dir=str(tmp_path / "scorer"),
    )
    train_or_load(cfg, trained_on="synthetic film ratings")
    return tmp_path / "scorer"


def test_a_trained_scorer_loads_with_plain_transformers_and_gives_its_scores(trained, fp32):
    scorer = S.Scorer.load(trained)
    assert scorer.meta.target_sd != 1.0 and scorer.meta.target_mean != 0.0  # the head's de-normalisation matters
    want = scorer.score(TEXTS)
    got = hf_scores(trained, TEXTS)  # AutoTokenizer.from_pretrained(folder), as the brief has it
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(hf_scores(trained, TEXTS, trust_remote_code=True), want, rtol=0, atol=1e-5)

    card = (trained / "README.md").read_text()
    assert "synthetic film ratings" in card and "raters' scale" in card and "from -4 to 4" in card
    assert "pearson" in card and "pairwise_accuracy" in card  # the held-out metrics
    assert "AutoModelForSequenceClassification.from_pretrained(" in card and "logits[:, 0]" in card
    assert "the completion alone" in card and E.CARD_MARK in card


def test_the_encoder_weights_are_stored_once(trained):
    encoder = trained / "encoder" / "model.safetensors"
    index = json.loads((trained / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert shards == {"encoder/model.safetensors", "score.safetensors"}
    assert sorted(p.name for p in trained.glob("*.safetensors")) == ["head.safetensors", "score.safetensors"]
    assert all(p.stat().st_size < 4096 for p in trained.glob("*.safetensors"))
    tokenizer = set(E.HF_TOKENIZER_FILES)
    rest = sum(p.stat().st_size for p in trained.iterdir() if p.is_file() and p.name not in tokenizer)
    assert rest < 40_000 < encoder.stat().st_size  # cards, config, code, heads: small beside the weights
    code = (trained / "modeling_condtune_scorer.py").read_text()
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(ast.parse(code))
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    assert imported == {"__future__", "torch", "transformers"} and 'ENCODER = "BertModel"' in code
    assert {p.name for p in trained.iterdir()} <= set(S.SCORER_FILES)


def test_a_scorer_that_reads_the_prompt_documents_its_text(tiny_encoder, tmp_path, fp32):
    torch.manual_seed(1)
    scorer = S.Scorer.new(str(tiny_encoder), "regression", "rater", max_length=24)
    scorer.meta.target_mean, scorer.meta.target_sd, scorer.meta.uses_prompt = 0.7, 1.9, True
    with torch.no_grad():
        scorer.model.head.bias.fill_(0.4)
    folder = scorer.save(tmp_path / "scorer")
    prompts = ["Review:  ", "", "   ", "Write a review of the film\n"]
    completions = ["Great fun.", "Dull.", "Awful and long.", "A moving, superb ending."]
    want = S.Scorer.load(folder).score_pairs(prompts, completions)

    card = (folder / "README.md").read_text()
    line = 'texts = [f"{p.rstrip()}\\n{c}" if p.strip() else c for p, c in zip(prompts, completions)]'
    assert line in card and "text_of(prompt, completion)" in card
    texts = [f"{p.rstrip()}\n{c}" if p.strip() else c for p, c in zip(prompts, completions)]  # the card's rule
    np.testing.assert_allclose(hf_scores(folder, texts), want, rtol=0, atol=1e-5)
    assert json.loads((folder / "config.json").read_text())["condtune_scorer"]["uses_prompt"] is True


def test_without_trust_remote_code_it_is_refused_not_read_as_a_bert_head(trained, fp32):
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForSequenceClassification.from_pretrained(trained)


def test_a_folder_saved_before_the_transformers_files_still_loads(tiny_encoder, tmp_path, fp32):
    torch.manual_seed(2)
    scorer = S.Scorer.new(str(tiny_encoder), "regression", "item")
    scorer.meta.target_mean, scorer.meta.target_sd = -1.0, 3.0
    new = scorer.save(tmp_path / "new")
    want = S.Scorer.load(new).score(TEXTS)

    old = shutil.copytree(new, tmp_path / "old")
    for name in E.HF_FILES:
        if (old / name).exists():
            (old / name).unlink()
    assert sorted(p.name for p in old.iterdir()) == ["encoder", "head.safetensors", "scorer.json"]
    np.testing.assert_allclose(S.Scorer.load(old).score(TEXTS), want, rtol=0, atol=1e-6)

    torch.save(S.load_head(old), old / "head.pt")  # and the older head.pt
    (old / "head.safetensors").unlink()
    np.testing.assert_allclose(S.Scorer.load(old).score(TEXTS), want, rtol=0, atol=1e-6)

    S.Scorer.load(old).save(old)  # saving over an old folder adds the transformers files
    np.testing.assert_allclose(hf_scores(old, TEXTS), want, rtol=0, atol=1e-5)


def test_saving_never_replaces_a_users_model_card_or_config(tiny_encoder, tmp_path):
    scorer = S.Scorer.new(str(tiny_encoder), "regression", "item")

    def refused(folder, name):
        with pytest.raises(FileExistsError, match=name):
            scorer.save(folder)
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("my notes\n")
    refused(notes, "README.md")
    assert [p.name for p in notes.iterdir()] == ["README.md"] and (notes / "README.md").read_text() == "my notes\n"

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}\n')
    refused(model, "config.json")

    old = scorer.save(tmp_path / "old")  # a scorer whose card the user wrote by hand, before these files
    for name in E.HF_FILES:
        if (old / name).exists():
            (old / name).unlink()
    (old / "README.md").write_text("# my scorer\n")
    refused(old, "README.md")
    assert (old / "README.md").read_text() == "# my scorer\n"

    folder = scorer.save(tmp_path / "s")
    scorer.save(folder)  # a scorer over a scorer (its own card and config): fine
    (folder / "README.md").write_text("# rewritten by hand\n")
    refused(folder, "README.md")
    scorer.save(folder, overwrite=True)
    assert E.CARD_MARK in (folder / "README.md").read_text()
