"""Export: the files `condtune scorer train` reads, and the ranking of completions and models."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rate_helpers import task_items

from condtune.rate.export import export, outcomes, pairwise_rows


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_files_and_counts(store, tmp_path):
    items = store.items()
    store.add_score("alice", items[0].item_id, 3)
    store.add_score("alice", items[1].item_id, None)  # skip
    store.add_score("bob", items[0].item_id, 1)
    pairs = []
    while (pair := store.next_pair("carol")) is not None and len(pairs) < 4:
        pairs.append(pair)
        store.add_comparison("carol", pair.pair_id, ["left", "right", "tie", "skip"][len(pairs) - 1])
    res = export(store, tmp_path / "out")

    points = _jsonl(res.pointwise)
    assert points == [
        {
            "item_id": items[0].item_id,
            "prompt": items[0].prompt,
            "completion": items[0].completion,
            "score": 3.0,
            "rater": "alice",
        },
        {
            "item_id": items[0].item_id,
            "prompt": items[0].prompt,
            "completion": items[0].completion,
            "score": 1.0,
            "rater": "bob",
        },
    ]
    prefs = _jsonl(res.pairwise)
    assert prefs == [
        {
            "prompt": pairs[0].prompt,
            "chosen": pairs[0].left.completion,
            "rejected": pairs[0].right.completion,
            "rater": "carol",
        },
        {
            "prompt": pairs[1].prompt,
            "chosen": pairs[1].right.completion,
            "rejected": pairs[1].left.completion,
            "rater": "carol",
        },
    ]
    ranking = json.loads(res.ranking.read_text())
    assert ranking["judgements"] == 3 and ranking["ties"] == 1 and ranking["skips"] == 1
    assert "models" not in ranking  # one model only
    top = ranking["completions"][0]
    assert top["wins"] == 1 and top["rating"] > 1000
    card = json.loads(res.card.read_text())
    assert (
        card["counts"]["scores"] == 2 and card["counts"]["score_skips"] == 1 and card["scale"] == {"min": -4, "max": 4}
    )
    assert "pointwise.jsonl" in card["scorer_train"]["pointwise"]
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_models_ranked_when_task_mixes_models(store, tmp_path):
    other = [
        dataclasses.replace(it, item_id="o" + it.item_id, model="other", completion=it.completion + " (other)")
        for it in task_items()
    ]
    store.import_items(other)
    n = 0
    while (pair := store.next_pair("dana")) is not None:
        if pair.left.model != pair.right.model:
            store.add_comparison("dana", pair.pair_id, "left" if pair.left.model == "other" else "right")
        else:
            store.add_comparison("dana", pair.pair_id, "tie")
        n += 1
        assert n <= 50
    store.add_score("dana", other[0].item_id, 4)
    ranking = json.loads(export(store, tmp_path / "o").ranking.read_text())
    models = ranking["models"]
    assert [m["model"] for m in models] == ["other", "tiny"]
    assert models[0]["rating"] > 1000 > models[1]["rating"] and models[1]["wins"] == 0
    assert models[0]["mean_score"] == 4.0 and models[0]["n_scores"] == 1


def test_empty_and_identical_texts_are_not_exported():
    comps = [
        {
            "choice": "left",
            "prompt": "p",
            "rater": "r",
            "left_completion": "",
            "right_completion": "x",
            "left_id": "1",
            "right_id": "2",
            "left_model": "m",
            "right_model": "m",
        },
        {
            "choice": "right",
            "prompt": "p",
            "rater": "r",
            "left_completion": "y",
            "right_completion": "y",
            "left_id": "3",
            "right_id": "4",
            "left_model": "m",
            "right_model": "n",
        },
        {
            "choice": "skip",
            "prompt": "p",
            "rater": "r",
            "left_completion": "a",
            "right_completion": "b",
            "left_id": "5",
            "right_id": "6",
            "left_model": "m",
            "right_model": "n",
        },
    ]
    assert pairwise_rows(comps) == []
    assert [tuple(c) for c in outcomes(comps, "item")] == [("1", "2", 1.0), ("3", "4", 0.0)]
    assert [tuple(c) for c in outcomes(comps, "model")] == [("m", "n", 0.0)]


def test_exported_files_are_readable_by_condtune_ratings(store, tmp_path):
    ratings = pytest.importorskip("condtune.ratings", reason="condtune.ratings (the ratings reader) is not available")
    items = store.items()
    for i, it in enumerate(items[:4]):
        store.add_score("alice", it.item_id, i - 2)
    while (pair := store.next_pair("bob")) is not None:
        store.add_comparison("bob", pair.pair_id, "left")
    res = export(store, tmp_path / "out")
    spec = ratings.PointwiseSpec(
        prompt_col="prompt",
        completion_col="completion",
        rater_col="rater",
        item_col="item_id",
        score_min=-4,
        score_max=4,
    )
    points = ratings.load_pointwise(res.pointwise, spec)
    assert len(points) == 4 and list(points["rater"].unique()) == ["alice"]
    prefs = ratings.load_pairwise(res.pairwise, rater_col="rater")
    assert len(prefs) == 9
