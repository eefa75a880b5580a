"""A relabelled table in the layout trl's ``SFTTrainer`` trains on: ``prompt`` is the *tagged* prompt.

The relabelled layout keeps the untagged ``prompt`` beside ``tagged_prompt`` (what ``condtune train``
reads); handed to trl as it is, it would train an unconditional model without a word. This is the
table to hand trl (``condtune relabel layout=trl``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from condtune.io import write_json
from condtune.relabel import TagCard, card_path
from condtune.tables import table_digest, write_table


def trl_completion(text: str) -> str:
    """An answer as conditional SFT trains it (:func:`condtune.sft_rows.answer_ids`): after a space,
    unless it begins with a space or a newline (trl adds the EOS token itself, as condtune adds EOS)."""
    return text if text.startswith((" ", "\n")) else " " + text


def to_trl_layout(tagged: pd.DataFrame, card: TagCard | None = None) -> pd.DataFrame:
    """A relabelled table in trl's prompt/completion layout, so that trl's ``SFTTrainer`` trains what
    ``condtune train`` trains: ``prompt`` is the *tagged* prompt, ``completion`` the answer as condtune
    trains it (:func:`trl_completion`); then the untagged prompt (``untagged_prompt``), ``score``,
    ``score_bin`` and one column per tag (``card``'s tags, else those of the rows' ``tags``), as text.

    The relabelled layout (``prompt`` untagged beside ``tagged_prompt``) fed to trl as it is would train
    an unconditional model without a word; this one is the table to hand trl. A row of a model's own
    sampled ids (``completion_ids``) has no text trl would tokenize to those ids: a ValueError."""
    missing = [c for c in ("tagged_prompt", "prompt", "completion") if c not in tagged.columns]
    if missing:
        raise ValueError(f"to_trl_layout: not a relabelled table (missing columns {missing}); relabel it first")
    if "completion_ids" in tagged.columns and tagged["completion_ids"].notna().any():
        raise ValueError(
            "to_trl_layout: rows of sampled token ids (completion_ids) are trained as sampled, which a text "
            "completion cannot say; train them with condtune train"
        )
    out = pd.DataFrame(
        {
            "prompt": tagged["tagged_prompt"].astype(str).to_numpy(),
            "completion": [trl_completion(str(t)) for t in tagged["completion"]],
            "untagged_prompt": tagged["prompt"].astype(str).to_numpy(),
        }
    )
    for col in ("score", "score_bin"):
        if col in tagged.columns:
            out[col] = tagged[col].to_numpy()
    rows = tagged["tags"] if "tags" in tagged.columns else [{}] * len(tagged)
    names = sorted(card.attributes) if card is not None else sorted({n for t in rows for n in (t or {})})
    for name in names:
        if name in out.columns:
            raise ValueError(f"to_trl_layout: the tag {name!r} is named as a column of the trl layout")
        out[name] = [str((t or {}).get(name, "")) for t in rows]
    return out


def write_trl(tagged: pd.DataFrame, card: TagCard, path: str | Path) -> Path:
    """Write the trl layout (:func:`to_trl_layout`) of a relabelled table to ``path`` (.jsonl, .csv or
    .parquet) and the card beside it (``path.card.json``, with this table's row count and digest), each
    atomically, the card last; ``card`` itself is left as it was."""
    out = to_trl_layout(tagged, card)
    write_table(out, path)
    described = replace(card, n_rows=len(out), data_digest=table_digest(out))
    write_json(card_path(path), described.to_dict())
    return Path(path)
