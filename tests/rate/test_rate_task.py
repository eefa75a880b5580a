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


# ---------------------------------------------------- rows a rater could not rate, ids a page could not carry

GOOD = {"item_id": "a", "prompt": "p", "completion": "c", "model": "m", "sample_index": 0}
UNSAFE_IDS = ["", " ", "a b", "a/b", "../x", "..", ".hidden", "-x", "<script>", 'a"b', "a&b", "a?b", "a#b", "a%2F"]
UNSAFE_IDS += ["a\nb", "é", "a\x00b", "x" * 129]


@pytest.mark.parametrize(
    "change, column, message",
    [
        ({"completion": ""}, "completion", "empty completion (blank or whitespace only)"),
        ({"completion": " \n\t "}, "completion", "empty completion (blank or whitespace only)"),
        ({"completion": "\u3000"}, "completion", "empty completion (blank or whitespace only)"),  # ideographic space
        ({"model": ""}, "model", "empty model name"),
        ({"model": "  "}, "model", "empty model name"),
        *[({"item_id": i}, "item_id", "unsafe item_id") for i in UNSAFE_IDS],
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, dict) else None,
)
def test_bad_task_rows_are_refused_naming_the_row(tmp_path, change, column, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "item_id": "b", **change}) + "\n")
    with pytest.raises(TaskError) as info:
        load_task(path)
    assert str(info.value).startswith(f"{path}, row 2, column {column!r}: {message}")
    assert info.value.row == 2 and info.value.column == column
    assert "\n" not in str(info.value)  # one line, whatever the id holds


def test_a_long_unsafe_id_is_shown_cut():
    from condtune.rate.task import _check_row

    with pytest.raises(
        TaskError, match=r"unsafe item_id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\.\.\. \(300 characters\)"
    ):
        _check_row("t.jsonl", 1, {**GOOD, "item_id": "x" * 300})


@pytest.mark.parametrize("item_id", ["a", "3f2a9c0d1e2b4a5c", "x" * 128, "m:step_40.v-2", "Z9"])
def test_safe_ids_load(tmp_path, item_id):
    path = tmp_path / "ok.jsonl"
    path.write_text(json.dumps({**GOOD, "item_id": item_id, "completion": "  fine  ", "model": " m "}) + "\n")
    (item,) = load_task(path)
    assert item.item_id == item_id and item.completion == "  fine  "  # kept as written


def test_make_item_id_makes_safe_ids():
    from condtune.rate.task import ITEM_ID

    assert ITEM_ID.fullmatch(make_item_id("runs/rloo/step_40", "<b>p</b>", sample_index=3, completion="x\n"))


@pytest.mark.parametrize(
    "change, where",
    [
        ({"completion": "   "}, "row 2, column 'completion': empty completion"),
        ({"model": ""}, "row 2, column 'model': empty model name"),
        ({"item_id": "<img src=x>"}, "row 2, column 'item_id': unsafe item_id '<img src=x>'"),
        ({"item_id": "a"}, "row 2, column 'item_id': duplicate item_id 'a' (first on row 1)"),
    ],
)
def test_condtune_rate_refuses_a_bad_task_file(tmp_path, capsys, change, where):
    """The command: exit 2, one line naming the file and the row, and no ratings database made."""
    from condtune.cli import main as cli

    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "item_id": "b", **change}) + "\n")
    assert cli(["rate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}, {where}" in err
    assert not (tmp_path / "tasks.ratings.sqlite").exists()
