"""The SQLite store: WAL, exactly-once answers, next-item selection that never repeats."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from rate_helpers import task_items

from condtune.rate.store import DuplicateRating, InvalidRating, Store, StoreError, UnknownTarget, check_rater


def test_wal_and_schema(store):
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 9
    # 3 prompts x C(3,2) pairs of distinct completions
    assert con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0] == 9
    con.close()
    assert store.scale == (-4, 4)


def test_import_is_idempotent_and_detects_changed_items(store):
    again = store.import_items(task_items())
    assert (again.new_items, again.new_pairs, again.total_items) == (0, 0, 9)
    changed = task_items()
    changed[0] = dataclasses.replace(changed[0], completion="edited")
    with pytest.raises(StoreError, match="differs from the stored one"):
        store.import_items(changed)


def test_second_model_adds_cross_model_pairs(store):
    stats = store.import_items(task_items(model="other"))
    assert stats.new_items == 9
    # each prompt now has 6 distinct completions... but the texts repeat across models, so pairs
    # of identical text are not offered: C(6,2) - 3 identical = 12 per prompt
    assert stats.total_pairs == 3 * 12


def test_score_exactly_once(store):
    item = store.next_item("alice")
    store.add_score("alice", item.item_id, 3)
    with pytest.raises(DuplicateRating):
        store.add_score("alice", item.item_id, -1)
    store.add_score("bob", item.item_id, -1)  # another rater may rate it
    rows = store.score_rows()
    assert [(r["rater"], r["score"]) for r in rows] == [("alice", 3.0), ("bob", -1.0)]


@pytest.mark.parametrize("score", [5, -5, 1.5])
def test_score_outside_scale_is_refused(store, score):
    with pytest.raises(InvalidRating, match="integer from -4 to 4"):
        store.add_score("alice", store.next_item("alice").item_id, score)
    assert store.score_rows() == []


def test_unknown_targets(store):
    with pytest.raises(UnknownTarget):
        store.add_score("alice", "no-such-item", 1)
    with pytest.raises(UnknownTarget):
        store.add_comparison("alice", 9999, "left")
    with pytest.raises(InvalidRating):
        store.add_comparison("alice", 1, "both")
    assert store.score_rows() == [] and store.comparison_rows() == []


def test_next_item_never_repeats_and_skips_count(store):
    seen = []
    while (item := store.next_item("alice")) is not None:
        assert item.item_id not in seen
        seen.append(item.item_id)
        store.add_score("alice", item.item_id, None if len(seen) % 3 == 0 else 1)
        assert len(seen) <= 9
    assert len(seen) == 9
    p = store.progress("alice", "score")
    assert (p.done, p.total, p.ratings, p.raters) == (9, 9, 6, 1)
    # bob starts with the items alice's skips left unrated (fewest ratings first)
    first_bob = store.next_item("bob").item_id
    assert first_bob in {seen[2], seen[5], seen[8]}


def test_next_pair_never_repeats_and_order_is_stable(store):
    seen = set()
    while (pair := store.next_pair("carol")) is not None:
        assert pair.pair_id not in seen and pair.left.prompt == pair.right.prompt == pair.prompt
        assert store.pair(pair.pair_id, "carol") == pair  # same left/right on reload
        seen.add(pair.pair_id)
        store.add_comparison("carol", pair.pair_id, "tie")
        with pytest.raises(DuplicateRating):
            store.add_comparison("carol", pair.pair_id, "left")
    assert len(seen) == 9 and store.progress("carol", "ab").done == 9


def test_scale_is_fixed_once_scores_exist(store):
    store.set_scale(-4, 4)
    store.add_score("a", store.next_item("a").item_id, 0)
    with pytest.raises(StoreError, match="refusing to switch"):
        store.set_scale(1, 5)


def test_store_reopens_with_everything(store):
    store.add_score("a", store.next_item("a").item_id, 2)
    again = Store(store.path)
    assert again.secret == store.secret and again.scale == (-4, 4) and len(again.score_rows()) == 1


@pytest.mark.parametrize("name", ["", " ", "x" * 41, "<script>", "-lead", "a/b"])
def test_bad_rater_names(name):
    with pytest.raises(InvalidRating):
        check_rater(name)


def test_good_rater_names():
    assert check_rater("  Zoë K. ") == "Zoë K."
    assert check_rater("r_2@lab-1") == "r_2@lab-1"
