"""A tagged table and its card must come from the same relabel run: train refuses a table that its
card does not describe (a relabel killed between its two writes leaves a new table by an old card)."""

from __future__ import annotations

import pandas as pd

from condtune.cli import main as cli
from condtune.relabel import TagCard, write_tagged
from condtune.tables import read_table, table_digest, write_table
from condtune.tags import Binning, TagFormat


def _tagged(n=8):
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[n // 2, n // 2]), TagFormat())
    df = pd.DataFrame(
        {"prompt": ["Review:"] * n, "completion": [f"Text {i}." for i in range(n)], "score_bin": [1, 0] * (n // 2)}
    )
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    return df, card


def test_digest_survives_a_round_trip_and_sees_a_changed_row(tmp_path):
    df, card = _tagged()
    path = write_tagged(df, card, tmp_path / "t.jsonl")
    back, loaded = read_table(path), TagCard.load(path)
    assert loaded.n_rows == 8 and loaded.data_digest == table_digest(back) == table_digest(df)
    loaded.check_describes(back, path)
    assert table_digest(df.assign(completion=df["completion"].str.replace("Text 3.", "Text 3!"))) != table_digest(df)


def test_train_refuses_a_table_its_card_does_not_describe(tmp_path, tiny_lm, capsys):
    df, card = _tagged()
    path = write_tagged(df, card, tmp_path / "t.jsonl")
    args = [
        "train",
        f"data={path}",
        f"model={tiny_lm}",
        "sft.max_steps=1",
        "sft.per_device_train_batch_size=4",
        f"output_dir={tmp_path / 'p'}",
    ]
    write_table(df.head(6), path)  # a new table written, its card not (yet)
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert "has 6 rows but its card t.jsonl.card.json describes 8" in err and "rerun condtune relabel" in err
    write_table(df.assign(completion=df["completion"][::-1].to_numpy()), path)  # same size, other rows
    assert cli(args) == 2
    assert "differ from those its card" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # refused before anything was written
