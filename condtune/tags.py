"""Score bins and tag strings.

A :class:`Binning` quantises scores into K bins whose edges are fit on data and persisted
(with each bin's median score, so a bin can be turned back into a number). A
:class:`TagFormat` writes the score bin and any other attributes (domain, style, author,
length...) as a prefix placed *before* the prompt, in one of two styles:

* ``text``: words the pretrained model already reads, e.g. ``"Rating: 4 out of 5 stars.\\n"``
  and ``"Domain: movie.\\n"``. Measured to be learned much faster than fresh tokens.
* ``token``: one new special token per value, e.g. ``<|score_4|>`` ``<|domain=movie|>``,
  added to the tokenizer (see :mod:`condtune.policy`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np

MAX_TAG_VALUES = 64
"""the most distinct values a tag column may have: a tag is a category (a column of many values, a
number above all, is binned into a few before it is a tag)"""
DERIVED_COLUMNS = ("score", "score_bin", "tags", "tagged_prompt")
"""the columns relabel writes, never a tag"""
TEXT_COLUMNS = ("prompt", "completion")
"""the prompt and the answer, never a tag"""
SCORE_LABEL = "Rating"
"""the head of the score tag in the 'text' style (an attribute must not be written with it)"""
SPECIAL_MARKS = ("<|", "|>")
"""the marks of special tokens (``<|score_3|>``, ``<|endoftext|>``): no tag name or value holds them"""


def line_breaker(text: str) -> str | None:
    """The first newline, other control character or line/paragraph separator in ``text``, described
    (None when it has none): each would let a tag write a line of its own into the prompt."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            kind = "a newline" if ch in "\n\r\x0b\x0c\x85\u2028\u2029" else "a control character"
            return f"{kind} ({ch!r})"
    return None


@dataclass
class Binning:
    """K bins over a score scale. ``edges`` are the K-1 inner boundaries, ascending."""

    edges: list[float]
    centers: list[float]
    counts: list[int] = field(default_factory=list)
    method: str = "quantile"

    @property
    def k(self) -> int:
        return len(self.edges) + 1

    @classmethod
    def fit(cls, scores: Sequence[float], k: int = 5, method: Literal["quantile", "uniform"] = "quantile") -> Binning:
        """Fit edges on ``scores``: equal-count (quantile) or equal-width (uniform) bins."""
        s = np.asarray(scores, dtype=float)
        if k < 2:
            raise ValueError(f"need at least 2 bins, got k={k}")
        if s.size < k or not np.all(np.isfinite(s)):
            raise ValueError(f"need at least k={k} finite scores to fit bins, got {s.size}")
        if method == "quantile":
            edges = np.quantile(s, np.linspace(0, 1, k + 1)[1:-1])
        elif method == "uniform":
            edges = np.linspace(s.min(), s.max(), k + 1)[1:-1]
        else:
            raise ValueError(f"unknown binning method {method!r} (quantile or uniform)")
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"scores have too few distinct values for {k} {method} bins (edges {edges.tolist()})")
        bins = np.searchsorted(edges, s, side="right")
        centers = [float(np.median(s[bins == b])) if np.any(bins == b) else float("nan") for b in range(k)]
        counts = [int(np.sum(bins == b)) for b in range(k)]
        return cls(edges=[float(e) for e in edges], centers=centers, counts=counts, method=method)

    def assign(self, scores: Sequence[float] | float) -> np.ndarray:
        """Bin index (0..K-1) of each score; scores beyond the ends go to the end bins."""
        return np.searchsorted(np.asarray(self.edges), np.asarray(scores, dtype=float), side="right")

    def label(self, b: int) -> int:
        """The 1-based label written in tags (bin 0 -> 1 ... bin K-1 -> K)."""
        return int(b) + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Binning:
        """Bins read back from a card; ValueError when they make no sense (a damaged card)."""
        missing = [k for k in ("edges", "centers") if k not in d]
        if missing:
            raise ValueError(f"binning is missing {missing}")
        b = cls(**{k: d[k] for k in ("edges", "centers", "counts", "method") if k in d})
        if not _numbers(b.edges) or not np.all(np.isfinite(b.edges)) or np.any(np.diff(b.edges) <= 0):
            raise ValueError(f"binning edges must be ascending finite numbers, got {b.edges!r}")
        if not _numbers(b.centers) or len(b.centers) != b.k:
            raise ValueError(f"binning has {b.k} bins (from its edges) but centers {b.centers!r}")
        return b


def _numbers(xs: object) -> bool:
    return isinstance(xs, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)


@dataclass(frozen=True)
class TagFormat:
    """How tags are written before the prompt."""

    style: Literal["text", "token"] = "text"
    """'text' (plain words) or 'token' (new special tokens)"""
    score_name: str = "score"
    """attribute name of the score tag"""

    def __post_init__(self):
        if self.style not in ("text", "token"):
            raise ValueError(f"tag style {self.style!r}: expected 'text' or 'token'")

    def score_tag(self, label: int, k: int) -> str:
        if self.style == "token":
            return f"<|{self.score_name}_{label}|>"
        return f"Rating: {label} out of {k} stars.\n"

    def attr_tag(self, name: str, value: str) -> str:
        if self.style == "token":
            return f"<|{name}={value}|>"
        return f"{self.attr_label(name)}: {value}.\n"

    @staticmethod
    def attr_label(name: str) -> str:
        """How the 'text' style writes an attribute's name (``"review_site"`` -> ``"Review site"``)."""
        return name.replace("_", " ").capitalize()

    def name_problem(self, name: object) -> str | None:
        """Why ``name`` cannot be a tag's name (None when it can): it would forge a line or a token
        of the prompt, or be written as the score tag."""
        if not isinstance(name, str) or not name.strip():
            return f"{name!r} is not a tag name (expected a non-empty column name)"
        bad = line_breaker(name)
        if bad:
            return f"tag name {name!r} holds {bad}, which would write a line of its own into every tagged prompt"
        if any(m in name for m in SPECIAL_MARKS):
            return f"tag name {name!r} holds '<|' or '|>', the marks of special tokens"
        if self.style == "token" and "=" in name:
            return f"tag name {name!r} holds '=', which separates a token tag's name from its value"
        label = self.attr_label(name).strip().lower()
        if (self.style == "text" and label == SCORE_LABEL.lower()) or name.strip().lower() == self.score_name.lower():
            return f"tag name {name!r} would be written as the score tag ({SCORE_LABEL!r} / {self.score_name!r})"
        return None

    def value_problem(self, value: str) -> str | None:
        """Why ``value`` cannot be a tag's value (None when it can): a newline or control character
        (a forged line, e.g. a second score line) or the marks of a special token."""
        bad = line_breaker(value)
        if bad:
            return f"tag value {value!r} holds {bad}, which would write a line of its own into the prompt"
        if any(m in value for m in SPECIAL_MARKS):
            return f"tag value {value!r} holds '<|' or '|>', the marks of special tokens"
        return None

    def prefix(self, score_label: int | None, k: int, attrs: Mapping[str, str] | None = None) -> str:
        """All tags for one example: attributes first (sorted by name), the score last."""
        parts = [self.attr_tag(n, str(v)) for n, v in sorted((attrs or {}).items())]
        if score_label is not None:
            parts.append(self.score_tag(score_label, k))
        out = "".join(parts)
        return out + ("\n" if self.style == "token" and out else "")

    def special_tokens(self, k: int | None, attr_values: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """The new tokens a 'token'-style vocabulary needs (empty for 'text')."""
        if self.style != "token":
            return []
        toks = [self.score_tag(b + 1, k) for b in range(k)] if k else []
        for name, values in sorted((attr_values or {}).items()):
            toks += [self.attr_tag(name, str(v)) for v in sorted(set(map(str, values)))]
        return toks
