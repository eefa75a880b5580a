"""The n-gram ridge gold rater: fit quality on synthetic reviews, pickle-free storage, input checks.

No torch and no network: this module only needs numpy, scipy and scikit-learn.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from condtune.ngram_scorer import NGRAM_ARRAYS, NGRAM_META, NgramMeta, NgramScorer, fit_on_items

POS = ["great", "wonderful", "superb", "lovely", "brilliant", "moving", "delightful"]
NEG = ["awful", "boring", "terrible", "dull", "tedious", "bad", "dreadful"]
FILLER = ["the", "film", "was", "and", "plot", "actors", "it", "story", "really", "quite", "a", "of", "music", "ending"]


def synthetic(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Reviews whose target is (#positive words - #negative words) plus a little noise."""
    rng = np.random.default_rng(seed)
    texts, targets = [], []
    for _ in range(n):
        n_pos, n_neg = rng.integers(0, 4, size=2)
        words = [*rng.choice(FILLER, size=rng.integers(4, 10)), *rng.choice(POS, n_pos), *rng.choice(NEG, n_neg)]
        rng.shuffle(words)
        texts.append(" ".join(words) + rng.choice([".", "!", ""]))
        targets.append(float(n_pos - n_neg) + rng.normal(0, 0.3))
    return texts, np.asarray(targets)


@pytest.fixture(scope="module")
def fitted() -> tuple[NgramScorer, dict]:
    tr_texts, tr_y = synthetic(400, seed=0)
    va_texts, va_y = synthetic(100, seed=1)
    return fit_on_items(tr_texts, tr_y, val_texts=va_texts, val_targets=va_y, seed=0)


def test_heldout_agreement_on_synthetic_reviews(fitted):
    scorer, metrics = fitted
    assert set(metrics) == {"pearson", "spearman", "mae", "n_val"}
    assert metrics["pearson"] > 0.8 and metrics["spearman"] > 0.8, metrics
    assert metrics["n_val"] == 100
    assert scorer.meta.metrics == metrics
    assert scorer.meta.kind == "ngram_ridge" and scorer.meta.alpha in (0.3, 1.0, 3.0, 10.0)
    s = scorer.score(["a great, wonderful and superb film", "an awful, boring and terrible film"])
    assert s.dtype == np.float64 and s[0] > s[1]


def test_fit_is_deterministic():
    texts, y = synthetic(120, seed=3)
    a, b = NgramScorer.fit(texts, y, seed=5), NgramScorer.fit(texts, y, seed=5)
    assert a.meta.alpha == b.meta.alpha
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.score(texts), b.score(texts))


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    scorer, _ = fitted
    texts, _ = synthetic(50, seed=2)
    out = scorer.save(tmp_path / "ngram")
    assert NgramScorer.is_saved(out) and not NgramScorer.is_saved(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == sorted([NGRAM_ARRAYS, NGRAM_META])
    with np.load(out / NGRAM_ARRAYS, allow_pickle=False) as z:
        assert sorted(z.files) == ["coef", "idf_char", "idf_word", "intercept"]
        assert z["coef"].dtype == z["idf_word"].dtype == z["idf_char"].dtype == np.float32
    info = json.loads((out / NGRAM_META).read_text())
    assert info["n_features"] == 2**18 and info["word_ngrams"] == [1, 2] and info["char_ngrams"] == [2, 5]
    assert info["format_version"] == 1 and info["alpha"] == scorer.meta.alpha and info["metrics"] == scorer.meta.metrics

    loaded = NgramScorer.load(out)
    assert isinstance(loaded.meta, NgramMeta) and loaded.meta == scorer.meta
    assert np.allclose(loaded.score(texts), scorer.score(texts), atol=1e-6, rtol=0)
    assert loaded.calls == 50

    scorer.save(out)  # overwriting an existing save works (atomic swap)
    assert np.allclose(NgramScorer.load(out).score(texts), scorer.score(texts), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "texts, targets, message",
    [
        (["good film"] * 12, [1.0] * 11, "differ in length"),
        (["good film"] * 12, [1.0] * 11 + [float("nan")], "finite"),
        (["good film"] * 12, [1.0] * 11 + [float("inf")], "finite"),
        (["good film"] * 9, [1.0] * 9, "at least 10"),
    ],
)
def test_fit_rejects_bad_input(texts, targets, message):
    with pytest.raises(ValueError, match=message):
        NgramScorer.fit(texts, targets)


def test_bad_texts_and_alphas():
    texts, y = synthetic(20, seed=4)
    with pytest.raises(ValueError, match="alphas"):
        NgramScorer.fit(texts, y, alphas=())
    with pytest.raises(TypeError, match=r"texts\[3\]"):
        NgramScorer.fit(texts[:3] + [None] + texts[4:], y)
    with pytest.raises(ValueError, match="differ in length"):
        fit_on_items(texts, y, val_texts=texts[:5], val_targets=y[:4])


def test_load_errors_name_the_path(fitted, tmp_path):
    scorer, _ = fitted
    with pytest.raises(FileNotFoundError, match="ngram_scorer.json"):
        NgramScorer.load(tmp_path / "nowhere")

    missing = scorer.save(tmp_path / "missing")
    (missing / NGRAM_ARRAYS).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing / NGRAM_ARRAYS))):
        NgramScorer.load(missing)

    corrupt = scorer.save(tmp_path / "corrupt")
    (corrupt / NGRAM_ARRAYS).write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match=re.escape(str(corrupt / NGRAM_ARRAYS))):
        NgramScorer.load(corrupt)

    truncated = scorer.save(tmp_path / "truncated")
    data = (truncated / NGRAM_ARRAYS).read_bytes()
    (truncated / NGRAM_ARRAYS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(truncated / NGRAM_ARRAYS))):
        NgramScorer.load(truncated)

    wrong_shape = scorer.save(tmp_path / "shape")
    np.savez_compressed(
        wrong_shape / NGRAM_ARRAYS,
        idf_word=scorer.idf_word,
        idf_char=scorer.idf_char,
        coef=scorer.coef[:10],
        intercept=np.array([0.0]),
    )
    with pytest.raises(ValueError, match="coef"):
        NgramScorer.load(wrong_shape)

    bad_json = scorer.save(tmp_path / "bad_json")
    (bad_json / NGRAM_META).write_text("{ not json")
    with pytest.raises(ValueError, match=re.escape(str(bad_json / NGRAM_META))):
        NgramScorer.load(bad_json)


def test_score_pairs_ignores_prompts(fitted):
    scorer, _ = fitted
    completions = ["a superb and lovely story", "the plot was dull", "it was fine"]
    a = scorer.score_pairs(["Write a glowing review:"] * 3, completions)
    b = scorer.score_pairs(["awful terrible boring", "", "great great great!"], completions)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, scorer.score(completions))


def test_calls_count_texts_and_batches_do_not_change_scores(fitted, tmp_path):
    scorer = NgramScorer.load(fitted[0].save(tmp_path / "s"))
    assert scorer.calls == 0
    texts, _ = synthetic(25, seed=6)
    whole = scorer.score(texts)
    assert scorer.calls == 25
    np.testing.assert_allclose(scorer.score(texts, batch_size=4), whole, atol=1e-12, rtol=0)
    assert scorer.calls == 50
    scorer.score_pairs(["p"] * 3, texts[:3])
    assert scorer.calls == 53
    assert scorer.score([]).shape == (0,) and scorer.calls == 53
    with pytest.raises(TypeError, match="single string"):
        scorer.score("just one text")


def test_module_does_not_import_torch():
    code = "import sys, condtune.ngram_scorer; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
