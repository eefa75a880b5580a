"""Task files: round trip, and errors that name the file, row and column."""

from __future__ import annotations

import json

import pytest
from rate_helpers import task_items

from condtune.rate.task import (
    TaskError,
    card_path,
    card_scale,
    load_card,
    load_task,
    make_item_id,
    write_task,
)


def test_round_trip_and_card(tmp_path):
    items = task_items()
    path, card = write_task(tmp_path / "t.jsonl", items, {"scale": {"min": 1, "max": 5}})
    assert card == tmp_path / "t.card.json" == card_path(path)
    assert load_task(path) == items
    assert card_scale(load_card(path)) == (1, 5)
    assert card_scale(load_card(tmp_path / "none.jsonl")) == (-4, 4)


def test_item_ids_are_stable_and_distinct():
    a = make_item_id("m", "p", sample_index=0, completion="text")
    assert a == make_item_id("m", "p", sample_index=0, completion="text")
    assert (
        len(
            {
                a,
                make_item_id("m2", "p", sample_index=0, completion="text"),
                make_item_id("m", "p", sample_index=1, completion="text"),
                make_item_id("m", "p", sample_index=0, completion="t"),
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    "line, match",
    [
        ('{"item_id": "a", "prompt": "p"', r"row 2: not valid JSON at character"),
        ("[1, 2]", r"row 2: expected a JSON object"),
        (
            '{"item_id": "b", "prompt": "p", "completion": "c", "model": "m"}',
            r"row 2, column 'sample_index': missing field",
        ),
        (
            '{"item_id": "b", "prompt": "p", "completion": 3, "model": "m", "sample_index": 0}',
            r"row 2, column 'completion': expected a string",
        ),
        (
            '{"item_id": "b", "prompt": "p", "completion": "c", "model": "m", "sample_index": -1}',
            r"row 2, column 'sample_index'",
        ),
        (
            '{"item_id": "a", "prompt": "p", "completion": "c", "model": "m", "sample_index": 1}',
            r"row 2, column 'item_id': duplicate item_id 'a' \(first on row 1\)",
        ),
    ],
)
def test_bad_rows_are_named(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    good = {"item_id": "a", "prompt": "p", "completion": "c", "model": "m", "sample_index": 0}
    path.write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(TaskError, match=match) as info:
        load_task(path)
    assert str(path) in str(info.value) and info.value.row == 2


def test_missing_and_empty_task(tmp_path):
    with pytest.raises(TaskError, match="task file not found"):
        load_task(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(TaskError, match="no items"):
        load_task(tmp_path / "empty.jsonl")
