"""A second gold rater of another model family: ridge regression on word and character n-grams.

It shares no weights and no features with the neural proxy scorer (the MiniLM encoder in
:mod:`condtune.scorer`), so a policy that games the proxy's quirks is not rewarded here for free.

Features
--------
Two hashed blocks (:class:`~sklearn.feature_extraction.text.HashingVectorizer`, ``2**18``
buckets each, no sign flipping): lowercased word 1-2 grams (``!`` and ``?`` count as words)
and ``char_wb`` 2-5 grams. Each block gets sublinear tf (``1 + log tf``) times a smooth idf
(``log((1 + n) / (1 + df)) + 1``) from the training texts, then L2 row normalisation; the
blocks are stacked side by side. Buckets no training text hit get idf 0, so unseen n-grams
neither score nor dilute the row norm (as words outside a vocabulary would).

Model
-----
:class:`~sklearn.linear_model.Ridge` on the human mean ratings; alpha is picked by MSE on a
seeded 10% split of the training texts, then the model is refit on all of them.

Storage (no pickle)
-------------------
A directory with ``ngram_scorer.npz`` (``idf_word``, ``idf_char``, ``coef`` as float32 and
``intercept`` as a 1-element array; read with ``allow_pickle=False``) and ``ngram_scorer.json``
(settings, format version, alpha, metrics). Hashing needs no vocabulary, so nothing else is kept.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from condtune import metrics as M
from condtune.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

NGRAM_META = "ngram_scorer.json"
NGRAM_ARRAYS = "ngram_scorer.npz"
FORMAT_VERSION = 1
SETTINGS = {"n_features": 2**18, "word_ngrams": [1, 2], "char_ngrams": [2, 5], "token_pattern": r"(?u)\b\w+\b|[!?]"}


@dataclass
class NgramMeta:
    """What a saved n-gram scorer knows about itself (``metrics`` as on :class:`condtune.scorer.ScorerMeta`)."""

    alpha: float
    """the ridge penalty picked on the internal validation split"""
    kind: str = "ngram_ridge"
    metrics: dict = field(default_factory=dict)
    """held-out agreement (pearson, spearman, mae, n_val) when fit with :func:`fit_on_items`"""
    trained_on: str | None = None


def _vectorizers(settings: dict) -> tuple[HashingVectorizer, HashingVectorizer]:
    common = dict(n_features=settings["n_features"], alternate_sign=False, norm=None, lowercase=True)
    word = HashingVectorizer(
        analyzer="word", ngram_range=tuple(settings["word_ngrams"]), token_pattern=settings["token_pattern"], **common
    )
    char = HashingVectorizer(analyzer="char_wb", ngram_range=tuple(settings["char_ngrams"]), **common)
    return word, char


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    """Smooth idf from the document frequencies of ``counts``; 0 for buckets no document hit."""
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])  # CSR rows hold each column at most once
    return np.where(df > 0, np.log((1 + n) / (1 + df)) + 1, 0.0).astype(np.float32)


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf * idf, then L2 row normalisation (rows with no known n-gram stay zero)."""
    x = counts.astype(np.float64, copy=True)
    x.data = (1.0 + np.log(x.data)) * idf[x.indices]
    x.eliminate_zeros()
    return normalize(x, norm="l2", copy=False)


class NgramScorer:
    """A fitted n-gram ridge rater: ``NgramScorer.load(dir).score(texts)`` -> numbers on the raters' scale."""

    def __init__(
        self,
        idf_word: np.ndarray,
        idf_char: np.ndarray,
        *,
        coef: np.ndarray,
        intercept: float,
        meta: NgramMeta,
        settings: dict | None = None,
    ):
        self.settings = dict(settings or SETTINGS)
        self.idf_word, self.idf_char = np.asarray(idf_word, np.float32), np.asarray(idf_char, np.float32)
        self.coef, self.intercept = np.asarray(coef, np.float32), float(intercept)
        self.meta = meta
        self.calls = 0  # texts scored so far (the benchmark's "scorer calls")
        self._word, self._char = _vectorizers(self.settings)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: Sequence[float],
        alphas: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
        seed: int = 0,
    ) -> NgramScorer:
        """Fit on ``texts`` against ``targets``; alpha is chosen on a seeded 10% split, then refit on all."""
        texts, y = _check_texts(texts, "texts"), np.asarray(targets, dtype=np.float64)
        if y.ndim != 1 or len(texts) != len(y):
            raise ValueError(f"texts and targets differ in length ({len(texts)} texts, {y.size} targets)")
        if len(texts) < 10:
            raise ValueError(f"need at least 10 texts to fit an n-gram scorer, got {len(texts)}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"targets must all be finite; {int(np.sum(~np.isfinite(y)))} are NaN or infinite")
        if not alphas or any(not (a > 0) for a in alphas):
            raise ValueError(f"alphas must be a non-empty list of positive numbers, got {list(alphas)}")
        word, char = _vectorizers(SETTINGS)
        wc, cc = word.transform(texts).tocsr(), char.transform(texts).tocsr()
        alpha = float(alphas[0])
        if len(alphas) > 1:
            perm = np.random.default_rng(seed).permutation(len(texts))
            val, tr = perm[: max(2, round(0.1 * len(texts)))], perm[max(2, round(0.1 * len(texts))) :]
            mse = {}
            for a in alphas:
                idf_w, idf_c, model = _fit_ridge(wc[tr], cc[tr], y[tr], alpha=float(a))
                pred = model.predict(sp.hstack([_weigh(wc[val], idf_w), _weigh(cc[val], idf_c)], format="csr"))
                mse[float(a)] = float(np.mean((pred - y[val]) ** 2))
            alpha = min(mse, key=mse.get)  # first of the lowest, so ties resolve the same way every run
            log.info("n-gram ridge: validation MSE by alpha %s -> alpha=%g", mse, alpha)
        idf_w, idf_c, model = _fit_ridge(wc, cc, y, alpha=alpha)
        return cls(
            idf_w, idf_c, coef=model.coef_, intercept=model.intercept_, meta=NgramMeta(alpha=alpha), settings=SETTINGS
        )

    # ------------------------------------------------------------------ scoring

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        texts = _check_texts(texts, "texts")
        return sp.hstack(
            [
                _weigh(self._word.transform(texts).tocsr(), self.idf_word),
                _weigh(self._char.transform(texts).tocsr(), self.idf_char),
            ],
            format="csr",
        )

    def score(self, texts: Sequence[str], batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        """Scores on the raters' scale (float64, one per text). ``progress`` shows a bar over batches."""
        texts = _check_texts(texts, "texts")
        out = np.empty(len(texts), dtype=np.float64)
        for start in tqdm(range(0, len(texts), batch_size), desc="scoring", disable=not progress, leave=False):
            x = self.features(texts[start : start + batch_size])
            out[start : start + batch_size] = x @ self.coef.astype(np.float64) + self.intercept
        self.calls += len(texts)
        return out

    def score_pairs(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> np.ndarray:
        """Scores of ``completions`` alone: the prompt is ignored (the scorer is fit on texts without prompts)."""
        return self.score(list(completions), **kw)

    # ------------------------------------------------------------------ storage

    @staticmethod
    def is_saved(path: str | Path) -> bool:
        return (Path(path) / NGRAM_META).is_file()

    def save(self, path: str | Path) -> Path:
        with atomic_dir(path) as tmp:
            np.savez_compressed(
                tmp / NGRAM_ARRAYS,
                idf_word=self.idf_word,
                idf_char=self.idf_char,
                coef=self.coef,
                intercept=np.array([self.intercept], dtype=np.float64),
            )
            write_json(tmp / NGRAM_META, {"format_version": FORMAT_VERSION, **self.settings, **asdict(self.meta)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> NgramScorer:
        path = Path(path)
        meta_path, arrays_path = path / NGRAM_META, path / NGRAM_ARRAYS
        for p in (meta_path, arrays_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing; {path} is not a saved n-gram scorer")
        try:
            info = read_json(meta_path)
            settings = {k: info[k] for k in SETTINGS}
            meta = NgramMeta(**{k: info[k] for k in ("alpha", "kind", "metrics", "trained_on")})
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_path}: not a valid n-gram scorer settings file ({exc!r})") from None
        if info.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: format_version {info.get('format_version')!r}, expected {FORMAT_VERSION}")
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("idf_word", "idf_char", "coef", "intercept")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{arrays_path}: unreadable or incomplete n-gram scorer arrays ({exc!r})") from None
        n = int(settings["n_features"])
        shapes = {"idf_word": (n,), "idf_char": (n,), "coef": (2 * n,), "intercept": (1,)}
        for k, shape in shapes.items():
            if arrays[k].shape != shape or not np.all(np.isfinite(arrays[k])):
                raise ValueError(
                    f"{arrays_path}: array {k!r} has shape {arrays[k].shape} (expected {shape}) or non-finite values"
                )
        return cls(
            arrays["idf_word"],
            arrays["idf_char"],
            coef=arrays["coef"],
            intercept=arrays["intercept"][0],
            meta=meta,
            settings=settings,
        )


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of strings, not a single string")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] is {type(texts[bad]).__name__}, expected str")
    return texts


def _fit_ridge(
    wc: sp.csr_matrix, cc: sp.csr_matrix, y: np.ndarray, *, alpha: float
) -> tuple[np.ndarray, np.ndarray, Ridge]:
    """idf vectors from these rows, then a ridge fit on the weighted features (coef kept as float32)."""
    idf_w, idf_c = _idf(wc), _idf(cc)
    x = sp.hstack([_weigh(wc, idf_w), _weigh(cc, idf_c)], format="csr")
    model = Ridge(alpha=alpha, solver="sparse_cg").fit(x, y)
    model.coef_ = model.coef_.astype(np.float32)
    return idf_w, idf_c, model


def fit_on_items(
    train_texts: Sequence[str],
    train_targets: Sequence[float],
    *,
    val_texts: Sequence[str],
    val_targets: Sequence[float],
    seed: int = 0,
) -> tuple[NgramScorer, dict]:
    """Fit on the training items; held-out ``pearson``, ``spearman``, ``mae``, ``n_val`` (also in ``meta.metrics``)."""
    val_texts, truth = _check_texts(val_texts, "val_texts"), np.asarray(val_targets, dtype=np.float64)
    if len(val_texts) != len(truth):
        raise ValueError(f"val_texts and val_targets differ in length ({len(val_texts)} texts, {len(truth)} targets)")
    scorer = NgramScorer.fit(train_texts, train_targets, seed=seed)
    pred = scorer.score(val_texts)
    scorer.calls = 0  # evaluation is not usage
    metrics = {
        "pearson": M.pearson(pred, truth),
        "spearman": M.spearman(pred, truth),
        "mae": M.mae(pred, truth),
        "n_val": int(len(truth)),
    }
    scorer.meta.metrics = metrics
    return scorer, metrics
