"""Relabel a dataset: score every (prompt, completion) with a scorer, quantise into K bins
(edges fit on these scores, or reused from a card), add column tags, and write the tagged
dataset atomically with a card describing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from condtune.artifacts import ArtifactError, read_json_object
from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.io import write_json
from condtune.tables import table_digest, write_table
from condtune.tags import DERIVED_COLUMNS, MAX_TAG_VALUES, TEXT_COLUMNS, Binning, TagFormat

CARD_SUFFIX = ".card.json"


def card_path(dataset_path: str | Path) -> Path:
    return Path(f"{dataset_path}{CARD_SUFFIX}")


@dataclass
class TagCard:
    """Self-description of a tagged dataset (and, copied, of a policy trained on it)."""

    binning: Binning
    tag_format: TagFormat = field(default_factory=TagFormat)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    scorer: str | None = None
    scorer_meta: dict | None = None
    n_rows: int = 0
    data_digest: str | None = None
    """:func:`condtune.tables.table_digest` of the table it describes (on a policy: the table it was trained on)"""

    def __post_init__(self):
        check_attributes(self.attributes, self.tag_format)

    def to_dict(self) -> dict:
        return {
            "binning": self.binning.to_dict(),
            "tag_format": {"style": self.tag_format.style, "score_name": self.tag_format.score_name},
            "attributes": self.attributes,
            "scorer": self.scorer,
            "scorer_meta": self.scorer_meta,
            "n_rows": self.n_rows,
            "data_digest": self.data_digest,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TagCard:
        if not isinstance(d, dict) or not isinstance(d.get("binning"), dict):
            raise ValueError("missing key 'binning' (the score bins)")
        attributes = d.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(isinstance(v, list) for v in attributes.values()):
            raise ValueError(f"attributes must map each tag to a list of its values, got {attributes!r}")
        return cls(
            binning=Binning.from_dict(d["binning"]),
            tag_format=TagFormat(**d.get("tag_format", {})),
            attributes={k: list(v) for k, v in attributes.items()},
            scorer=d.get("scorer"),
            scorer_meta=d.get("scorer_meta"),
            n_rows=int(d.get("n_rows", 0)),
            data_digest=d.get("data_digest"),
        )

    def check_describes(self, df: pd.DataFrame, path: str | Path) -> None:
        """A clear error unless this card was written with this very table (an interrupted relabel
        can leave a new table beside an old card)."""
        fix = "the table and its card come from different relabel runs; rerun condtune relabel"
        if self.n_rows and self.n_rows != len(df):
            raise DataError(
                path, f"has {len(df)} rows but its card {card_path(path).name} describes {self.n_rows}: {fix}"
            )
        if self.data_digest and self.data_digest != table_digest(df):
            raise DataError(path, f"its rows differ from those its card {card_path(path).name} describes: {fix}")

    @classmethod
    def load(cls, path: str | Path) -> TagCard:
        path = Path(path)
        p = path if path.name.endswith(".json") else card_path(path)
        if not p.exists():
            raise DataError(p, "no tag card here; relabel the dataset with `condtune relabel` first")
        return cls.read(p, "tag card")

    @classmethod
    def read(cls, path: Path, what: str = "tag card", skip: Sequence[str] = ()) -> TagCard:
        """The card in the JSON file ``path`` (keys in ``skip`` are not the card's, e.g. a policy's
        base_model); truncated JSON, a missing key or bins that make no sense is a DataError naming it."""
        d = read_json_object(path, what)
        try:
            return cls.from_dict({k: v for k, v in d.items() if k not in skip})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(path, f"not a valid {what}: {exc}") from None

    def prefix(self, score: float | None = None, bin_index: int | None = None, attrs: dict | None = None) -> str:
        """The tag prefix for a requested score (raters' scale) or bin, plus attributes."""
        if bin_index is None and score is not None:
            bin_index = int(self.binning.assign(score))
        for name, value in (attrs or {}).items():
            known = self.attributes.get(name)
            if known is None:
                raise ValueError(f"unknown tag {name!r}; this model knows {sorted(self.attributes)}")
            if str(value) not in known:
                raise ValueError(f"unknown value {value!r} for tag {name!r}; known values: {known}")
        label = None if bin_index is None else self.binning.label(bin_index)
        return self.tag_format.prefix(label, self.binning.k, attrs)


def tagged_prompt(
    card: TagCard,
    prompt: str,
    *,
    score: float | None = None,
    bin_index: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """The prompt a policy reads: ``card``'s tags (``tags``, then the score tag of ``bin_index``, or
    of the bin ``score`` falls in; none without either) before ``prompt``. The one place a tagged
    prompt is built, so that relabel's rows, training (its tagged, untagged and contrast prompts),
    the online rounds and generation read the same text."""
    return card.prefix(score=score, bin_index=bin_index, attrs=tags) + prompt


def check_attributes(attributes: dict, tag_format: TagFormat) -> None:
    """A card's tag vocabulary (built by relabel, or read back from a file) holds no name or value
    that would forge a line or a token of the prompt, and no tag that is the prompt, the answer or
    the score: ValueError naming it."""
    if not isinstance(attributes, dict):
        raise ValueError(f"attributes must map each tag to a list of its values, got {attributes!r}")
    for name, values in attributes.items():
        problem = tag_format.name_problem(name)
        if name in TEXT_COLUMNS + DERIVED_COLUMNS:
            problem = f"tag {name!r} is a column relabel reads or writes (the prompt, the answer or the score)"
        if problem:
            raise ValueError(f"attributes: {problem}")
        for v in values:
            if not isinstance(v, str):
                raise ValueError(f"attributes: tag {name!r} has a value {v!r} that is not text")
            problem = tag_format.value_problem(v)
            if problem:
                raise ValueError(f"attributes: tag {name!r}: {problem}")


def check_tag_columns(
    df: pd.DataFrame,
    tag_columns: Sequence[str],
    source: str | Path = "dataset",
    *,
    tag_format: TagFormat = TagFormat(),
    prompt_col: str | None = None,
    completion_col: str | None = None,
    max_values: int = MAX_TAG_VALUES,
) -> None:
    """Tags cannot forge the prompt: each tag column is a ConfigError (a setting) or a DataError (naming
    the row and column) unless it is listed once, is not the prompt, the answer, the score or a column
    relabel writes (``prompt_col``/``completion_col``: the input's own names of the first two), has a
    value in every row, each value a text or number with no newline, control character or special-token
    mark, and at most ``max_values`` distinct values (a numeric column of many values is binned first)."""
    cols = list(tag_columns)
    text_cols = {"prompt": "prompt", "completion": "completion"}
    text_cols.update({c: w for c, w in ((prompt_col, "prompt"), (completion_col, "completion")) if c})
    _check_tag_names(cols, text_cols, source, tag_format)
    for col in cols:
        _check_tag_values(df, col, text_cols, source, tag_format, max_values)


def _check_tag_names(cols: list[str], text_cols: dict[str, str], source: str | Path, tag_format: TagFormat) -> None:
    """The settings' part of :func:`check_tag_columns`: each column listed once, not a text column
    (``text_cols``: its name -> what it holds) or one relabel writes, and a name a tag may have."""
    for i, col in enumerate(cols):
        if col in cols[:i]:
            raise ConfigError(f"tag_columns={cols}: {col!r} is listed twice; list each tag column once")
        if col in text_cols:
            raise ConfigError(
                f"tag_columns: {col!r} is the {text_cols[col]} column of {source}; a tag must not carry the "
                "prompt or the answer"
            )
        if col in DERIVED_COLUMNS:
            raise ConfigError(
                f"tag_columns: {col!r} is a column relabel writes ({', '.join(DERIVED_COLUMNS)}); "
                "a tag must not carry the score"
            )
        problem = tag_format.name_problem(col)
        if problem:
            raise ConfigError(f"tag_columns: {problem}")


def _check_tag_values(
    df: pd.DataFrame, col: str, text_cols: dict[str, str], source: str | Path, tag_format: TagFormat, max_values: int
) -> None:
    """The data's part of :func:`check_tag_columns`, for the tag column ``col``: present, a text or number
    value in every row, not the prompt's or the answer's copy, each value one a tag may have, and at
    most ``max_values`` of them."""
    if col not in df.columns:
        raise DataError(source, f"tag column missing (found columns: {list(df.columns)})", column=col)
    values = df[col]
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        raise DataError(source, "tag value is missing", row=int(bad[0]) + 1, column=col)
    for row, v in enumerate(values):
        if not isinstance(v, (str, int, float, np.number, np.bool_)):  # a list or a dict: no category
            raise DataError(
                source,
                f"expected a text or number tag value, got {type(v).__name__} {v!r}",
                row=row + 1,
                column=col,
            )
    strings = values.map(str)
    for name, what in text_cols.items():
        text = df[name].map(str) if name in df.columns else None
        if text is not None and strings.equals(text) and (text.str.strip() != "").any():
            raise DataError(
                source, f"the tag column holds the {what} of every row; a tag must not carry the {what}", column=col
            )
    distinct = pd.unique(strings)
    for v in distinct:
        problem = tag_format.value_problem(v)
        if problem:
            raise DataError(source, problem, row=_first_row(strings, v), column=col)
    if len(distinct) > max_values:
        over = _first_row(strings, distinct[max_values])
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        fix = (
            "a numeric column must be binned explicitly before it is a tag (e.g. a new column of a few ranges)"
            if numeric
            else "a tag is a category; merge its values, or bin the column into a few before tagging"
        )
        raise DataError(
            source,
            f"{'numeric ' if numeric else ''}tag column with {len(distinct)} distinct values, more than the "
            f"{max_values} a tag may have: {fix}",
            row=over,
            column=col,
        )


def _first_row(values: pd.Series, v: str) -> int:
    return int(np.flatnonzero((values == v).to_numpy())[0]) + 1


def score_in_batches(scorer, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 256) -> np.ndarray:
    out = []
    for start in tqdm(range(0, len(completions), batch_size), desc="relabel: scoring", unit="batch"):
        sl = slice(start, start + batch_size)
        out.append(scorer.score_pairs(prompts[sl], completions[sl], batch_size=64))
    return np.concatenate(out) if out else np.empty(0)


def relabel(
    df: pd.DataFrame,
    scorer,
    num_bins: int = 5,
    method: Literal["quantile", "uniform"] = "quantile",
    tag_format: TagFormat = TagFormat(),
    tag_columns: Sequence[str] = (),
    binning: Binning | None = None,
    scorer_name: str | None = None,
    source: str | Path = "dataset",
    scores: Sequence[float] | None = None,
    prompt_col: str | None = None,
    completion_col: str | None = None,
    max_tag_values: int = MAX_TAG_VALUES,
) -> tuple[pd.DataFrame, TagCard]:
    """Add ``score``, ``score_bin``, ``tags`` and ``tagged_prompt`` columns; return (df, card).

    ``scores`` given (e.g. scores made relative to their prompt's mean) are binned instead of
    scoring again; ``scorer`` is then only described in the card. The tag columns are checked first
    (:func:`check_tag_columns`; ``prompt_col``/``completion_col``: the input's own names of its prompt
    and answer, which are never tags)."""
    check_tag_columns(
        df,
        tag_columns,
        source,
        tag_format=tag_format,
        prompt_col=prompt_col,
        completion_col=completion_col,
        max_values=max_tag_values,
    )
    if binning is None and scores is None:
        check_bins_fit(df, num_bins, source, uses_prompt=getattr(getattr(scorer, "meta", None), "uses_prompt", True))
    out = df.copy()
    out["score"] = (
        np.asarray(scores, dtype=float)
        if scores is not None
        else score_in_batches(scorer, out["prompt"].tolist(), out["completion"].tolist())
    )
    binning = binning if binning is not None else _fit_bins(out["score"], num_bins, method, source)
    out["score_bin"] = binning.assign(out["score"]).astype(int)
    binning.counts = [int(np.sum(out["score_bin"] == b)) for b in range(binning.k)]
    attrs = {c: sorted(map(str, out[c].unique())) for c in tag_columns}
    card = TagCard(
        binning=binning,
        tag_format=tag_format,
        attributes=attrs,
        scorer=scorer_name,
        scorer_meta=getattr(scorer, "meta", None) and vars(scorer.meta),
        n_rows=len(out),
    )
    return _add_tags(out, card, tag_columns), card


def _fit_bins(scores: pd.Series, k: int, method: str, source: str | Path) -> Binning:
    """``k`` bins fit on ``scores``; scores too few to fill them are a ConfigError naming ``num_bins``."""
    try:
        return Binning.fit(scores, k=k, method=method)
    except ValueError as exc:
        distinct = len(np.unique(scores))
        raise ConfigError(
            f"num_bins={k}: the scorer gives the {len(scores)} rows of {source} {distinct} distinct scores, "
            f"which cannot fill {k} {method} bins ({exc}); use a smaller num_bins (or binning=uniform)"
        ) from None


def _add_tags(out: pd.DataFrame, card: TagCard, tag_columns: Sequence[str]) -> pd.DataFrame:
    """``out`` (binned) with its ``tags`` (each row's tag columns, as text) and its ``tagged_prompt``."""
    out["tags"] = (
        [{c: str(row[c]) for c in tag_columns} for _, row in out[list(tag_columns)].iterrows()]
        if tag_columns
        else [{}] * len(out)
    )
    out["tagged_prompt"] = [
        tagged_prompt(card, p, bin_index=b, tags=t) for b, t, p in zip(out["score_bin"], out["tags"], out["prompt"])
    ]
    return out


def check_bins_fit(df: pd.DataFrame, k: int, source: str | Path = "dataset", uses_prompt: bool = True) -> None:
    """Before any scoring: ``k`` must be at least 2, and no more than the distinct texts to score
    (equal texts get equal scores, so fewer distinct texts than bins leaves bins empty)."""
    if k < 2:
        raise ConfigError(f"num_bins={k}: score bins need num_bins >= 2 (one bin would tag every row alike)")
    texts = df["prompt"].astype(str) + "\x00" + df["completion"].astype(str) if uses_prompt else df["completion"]
    distinct = int(texts.nunique())
    if distinct < 2:
        raise ConfigError(
            f"num_bins={k}: {source} has {distinct} distinct texts ({len(df)} rows); "
            "score bins need at least 2 distinct texts"
        )
    if k > distinct:
        raise ConfigError(
            f"num_bins={k}: {source} has {distinct} distinct texts ({len(df)} rows), so at most {distinct} "
            f"distinct scores for {k} bins; use num_bins <= {distinct}"
        )


def write_tagged(df: pd.DataFrame, card: TagCard, path: str | Path) -> Path:
    """Write the tagged dataset and its card (each atomically; the card last, with the table's row
    count and digest, so a reader can tell a card from another run)."""
    write_table(df, path)
    card.n_rows, card.data_digest = len(df), table_digest(df)
    write_json(card_path(path), card.to_dict())
    return Path(path)
