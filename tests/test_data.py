"""Ratings/dataset validation: every bad input names the file, row and column."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from condtune.errors import DataError
from condtune.prompts import load_prompts
from condtune.ratings import PointwiseSpec, load_pairwise, load_pointwise, to_items
from condtune.tables import load_corpus, write_table

SPEC = PointwiseSpec(rater_col="rater", item_col="item_id", score_min=-4, score_max=4)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pointwise_roundtrip_formats(tmp_path, ratings_file):
    df = load_pointwise(ratings_file, SPEC)
    assert list(df.columns) == ["item_id", "prompt", "completion", "score", "rater"] and len(df) == 240
    for suffix in (".csv", ".parquet", ".jsonl"):
        raw = pd.read_json(ratings_file, lines=True)
        path = write_table(raw, tmp_path / f"r{suffix}")
        again = load_pointwise(path, SPEC)
        assert again["score"].tolist() == df["score"].tolist()
    hf_dir = tmp_path / "hf"
    import datasets

    datasets.Dataset.from_pandas(pd.read_json(ratings_file, lines=True)).save_to_disk(str(hf_dir))
    assert len(load_pointwise(hf_dir, SPEC)) == 240


def test_items_keep_individual_ratings(ratings_file):
    items = to_items(load_pointwise(ratings_file, SPEC))
    assert len(items) == 60 and (items["n"] == 4).all()
    assert items["scores"].map(len).eq(4).all() and items["raters"].iloc[0] == ["r0", "r1", "r2", "r3"]


@pytest.mark.parametrize(
    "bad_row, column, message",
    [
        ({"text": "ok", "score": float("nan")}, "score", "expected a finite number"),
        ({"text": "ok", "score": "high"}, "score", "expected a finite number, got 'high'"),
        ({"text": "ok", "score": 7}, "score", "outside the declared range"),
        ({"text": "   ", "score": 1}, "text", "empty text"),
        ({"text": None, "score": 1}, "text", "missing text"),
        ({"text": 12, "score": 1}, "text", "expected text"),
    ],
)
def test_pointwise_bad_values(tmp_path, bad_row, column, message):
    rows = [{"text": "fine", "score": 1}, {"text": "also fine", "score": -2}, bad_row]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        load_pointwise(path, PointwiseSpec(score_min=-4, score_max=4))
    assert err.value.row == 3 and err.value.column == column and message in str(err.value)
    assert str(path) in str(err.value) and "row 3" in str(err.value)


def test_missing_column_lists_what_is_there(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": "a", "rating": 1}])
    with pytest.raises(DataError, match=r"column 'score': missing column \(found columns: \['text', 'rating'\]\)"):
        load_pointwise(path)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_pointwise(tmp_path / "nope.jsonl")
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "a", "score": 1}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"broken.jsonl, row 2: not valid JSON"):
        load_pointwise(bad)
    pq = tmp_path / "fake.parquet"
    pq.write_text("not parquet")
    with pytest.raises(DataError, match="fake.parquet: cannot read it"):
        load_pointwise(pq)
    with pytest.raises(DataError, match="unsupported file type"):
        load_pointwise(tmp_path / "x.xlsx") if (tmp_path / "x.xlsx").write_text("") is not None else None


def test_csv_rows_are_data_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,score\nfine,1\n,2\n")
    with pytest.raises(DataError) as err:
        load_pointwise(path)
    assert err.value.row == 2 and err.value.column == "text"


def test_pairwise_validation(tmp_path, pairs_file):
    df = load_pairwise(pairs_file)
    assert list(df.columns) == ["prompt", "chosen", "rejected", "rater"] and len(df) == 40
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a", "rejected": "a"}],
    )
    with pytest.raises(DataError, match=r"row 2, column 'rejected': chosen and rejected are identical"):
        load_pairwise(path)
    path = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "p", "chosen": "", "rejected": "b"}])
    with pytest.raises(DataError, match=r"row 1, column 'chosen': empty text"):
        load_pairwise(path)


def test_corpus_requires_completion(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "text": "x"}])
    with pytest.raises(DataError, match="column 'completion'"):
        load_corpus(path)


def test_write_table_is_atomic(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("precious\n")
    with pytest.raises(DataError):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")
    assert target.read_text() == "precious\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_load_prompts_text_and_json_formats(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("Movie review:\n\nsecond\\nline two\n")
    assert load_prompts(txt) == ["Movie review:", "second\nline two"]
    jl = tmp_path / "p.JSONL"
    jl.write_text('{"prompt": "A:"}\n\n{"text": "B:"}\n{"prompt": "C:", "text": "ignored"}\n')
    assert load_prompts(jl) == ["A:", "B:", "C:"]
    js = tmp_path / "p.json"
    js.write_text(json.dumps([{"prompt": "A:"}, {"text": "B:"}]))
    assert load_prompts(js) == ["A:", "B:"]


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("bad.jsonl", '{"prompt": "A:"}\n{"other": "B:"}\n', r"bad.jsonl, row 2, column 'prompt': expected an object"),
        ("bad.jsonl", '{"prompt": "A:"}\n{"prompt": 3}\n', r"bad.jsonl, row 2, column 'prompt'"),
        ("bad.jsonl", '{"prompt": "A:"}\n{"text": null}\n', r"bad.jsonl, row 2, column 'text'"),
        ("bad.jsonl", '{"prompt": "A:"}\n{"prompt": \n', r"bad.jsonl, row 2: not valid JSON"),
        ("bad.json", json.dumps([{"prompt": "A:"}, ["B:"]]), r"bad.json, row 2, column 'prompt'"),
        ("bad.json", json.dumps({"prompt": "A:"}), r"bad.json: expected a JSON list"),
        ("empty.txt", "\n  \n", r"empty.txt: no prompts found"),
    ],
)
def test_load_prompts_errors_name_file_and_row(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=match):
        load_prompts(tmp_path / name)
    with pytest.raises(DataError, match="prompts file not found"):
        load_prompts(tmp_path / "missing.txt")


def test_read_jsonl_missing_file(tmp_path):
    from condtune.io import read_jsonl

    assert read_jsonl(tmp_path / "none.jsonl", missing_ok=True) == []
    with pytest.raises(DataError, match="none.jsonl: file not found"):
        read_jsonl(tmp_path / "none.jsonl")
