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

from dataclasses import asdict, dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np


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
        return f"{name.replace('_', ' ').capitalize()}: {value}.\n"

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
