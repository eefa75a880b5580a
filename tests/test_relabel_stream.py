"""Streaming relabel: batches in, tagged shards out, resume after an interruption, a card for all shards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.relabel import TagCard, card_path, relabel
from condtune.relabel_stream import MANIFEST, relabel_stream
from condtune.tables import load_corpus, read_table, table_digest
from condtune.tags import Binning, TagFormat
from tests.conftest import WORDS_NEG, WORDS_POS

N_ROWS = 130


class CountingScorer:
    """A scorer wrapper that counts its calls and can raise on a given call (a simulated kill)."""

    def __init__(self, scorer, fail_on: int | None = None):
        self.scorer, self.meta, self.fail_on = scorer, scorer.meta, fail_on
        self.calls = 0
        self.rows = 0

    def score_pairs(self, prompts, completions, **kw):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += len(completions)
        return self.scorer.score_pairs(prompts, completions, **kw)


@pytest.fixture(scope="module")
def scorer(tiny_encoder):
    from condtune.scorer import Scorer

    s = Scorer.new(str(tiny_encoder), "regression", "item")
    s.model.eval()
    return s


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(N_ROWS):
        words = rng.choice(WORDS_POS if i % 2 else WORDS_NEG, size=int(rng.integers(1, 4)))
        out.append(
            {
                "prompt": "Review:" if i % 3 else "Tweet:",
                "completion": f"It was {' and '.join(words)} ({i}).",
                "domain": "movie" if i % 3 else "book",
                "n": i,
            }
        )
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, rows) -> dict:
    d = tmp_path_factory.mktemp("stream_inputs")
    df = pd.DataFrame(rows)
    paths = {"jsonl": d / "data.jsonl", "csv": d / "data.csv", "parquet": d / "data.parquet", "hf": d / "hf"}
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    df.to_csv(paths["csv"], index=False)
    df.to_parquet(paths["parquet"], index=False)
    import datasets

    datasets.Dataset.from_pandas(df).save_to_disk(str(paths["hf"]))
    hub = d / "hub_repo"  # a dataset repo's layout, as downloaded from the hub: read by hf:<name or folder>
    (hub / "data").mkdir(parents=True)
    df.to_parquet(hub / "data" / "train-00000-of-00001.parquet", index=False)
    paths["hub"] = f"hf:{hub}"
    return paths


@pytest.fixture(scope="module")
def reference(inputs, scorer):
    """The in-memory relabel of the same rows."""
    return relabel(load_corpus(inputs["jsonl"]), scorer, num_bins=4, tag_columns=["domain"], source="data.jsonl")


def _same_as_reference(got: pd.DataFrame, card: TagCard, reference) -> None:
    want, want_card = reference
    assert len(got) == len(want) == card.n_rows
    assert got["completion"].tolist() == want["completion"].tolist()  # row order kept
    np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), atol=1e-5)
    assert got["score_bin"].tolist() == want["score_bin"].tolist()
    assert got["tagged_prompt"].tolist() == want["tagged_prompt"].tolist()
    assert [dict(t) for t in got["tags"]] == want["tags"].tolist()
    np.testing.assert_allclose(card.binning.edges, want_card.binning.edges, atol=1e-5)
    assert card.binning.counts == want_card.binning.counts
    assert card.attributes == want_card.attributes
    assert card.data_digest == table_digest(want)


@pytest.mark.parametrize(
    "kind,out_name", [("jsonl", "out.jsonl"), ("parquet", "out"), ("csv", "out"), ("hf", "out"), ("hub", "out")]
)
def test_streamed_equals_in_memory_for_each_input(inputs, scorer, reference, tmp_path, kind, out_name):
    out = tmp_path / out_name
    card = relabel_stream(
        inputs[kind], scorer, out, num_bins=4, tag_columns=["domain"], scorer_name="s", batch_rows=16, shard_rows=40
    )
    fmt = "jsonl" if out_name.endswith(".jsonl") else "parquet"
    assert sorted(p.name for p in out.glob("shard-*")) == [f"shard-0000{i}.{fmt}" for i in range(4)]  # 40,40,40,10
    got = read_table(out)  # what `condtune train data=<folder>` reads
    _same_as_reference(got, card, reference)
    assert TagCard.load(out).to_dict() == card.to_dict()
    card.check_describes(got, out)


def test_hub_datasets_by_name_in_memory_and_their_errors(inputs, rows, tmp_path):
    """hf:NAME[:SPLIT] reads what datasets.load_dataset reads (here a local repo folder, offline); an
    unknown split or a malformed name is a DataError naming the dataset and the split."""
    want = pd.DataFrame(rows)
    pd.testing.assert_frame_equal(read_table(inputs["hub"]), want)
    pd.testing.assert_frame_equal(read_table(inputs["hub"] + ":train"), want)
    with pytest.raises(DataError, match=r"hub_repo:validation: cannot load this .* \(split 'validation'"):
        read_table(inputs["hub"] + ":validation")
    with pytest.raises(DataError, match="expected hf:NAME"):
        read_table("hf:")
    with pytest.raises(DataError, match=r"split 'test'"):
        relabel_stream(inputs["hub"] + ":test", None, tmp_path / "out", num_bins=4)


def test_edges_from_is_one_pass_and_matches(inputs, scorer, reference, tmp_path):
    counting = CountingScorer(scorer)
    _, want_card = reference
    card = relabel_stream(
        inputs["parquet"],
        counting,
        tmp_path / "out",
        tag_columns=["domain"],
        binning=Binning.from_dict(want_card.binning.to_dict()),
        batch_rows=32,
        shard_rows=64,
    )
    assert counting.rows == N_ROWS and counting.calls == 5  # 32+32 | 32+32 | 2: each row scored once
    assert card.binning.edges == want_card.binning.edges
    _same_as_reference(read_table(tmp_path / "out"), card, reference)


def test_interrupted_run_resumes_without_rescoring(inputs, scorer, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    kw = dict(num_bins=4, tag_columns=["domain"], batch_rows=10, shard_rows=30)  # shards of 30,30,30,30,10: 13 calls
    first = CountingScorer(scorer, fail_on=8)  # dies in shard 2 (calls 7-9), after shards 0 and 1 are saved
    with pytest.raises(KeyboardInterrupt):
        relabel_stream(inputs["jsonl"], first, out, **kw)
    state = out / ".relabel"
    assert sorted(f.name for f in state.glob("scores-*")) == ["scores-00000.npy", "scores-00001.npy"]
    assert json.loads((out / MANIFEST).read_text())["tagged"] == [] and not card_path(out).exists()
    second = CountingScorer(scorer)
    card = relabel_stream(inputs["jsonl"], second, out, **kw)
    assert second.rows == N_ROWS - 60 and second.calls == 7  # finished shards never rescored
    _same_as_reference(read_table(out), card, reference)


def test_interrupted_tagging_resumes_from_the_last_shard(inputs, scorer, reference, tmp_path, monkeypatch):
    import condtune.relabel_stream as rs

    out = tmp_path / "out"
    kw = dict(num_bins=4, tag_columns=["domain"], batch_rows=20, shard_rows=40)
    written = []
    real_write = rs._write_shard

    def write(df, path, fmt):
        if len(written) == 2 and not written[-1:] == ["resumed"]:
            raise KeyboardInterrupt("simulated interruption")
        written.append(path.name)
        real_write(df, path, fmt)

    monkeypatch.setattr(rs, "_write_shard", write)
    first = CountingScorer(scorer)
    with pytest.raises(KeyboardInterrupt):
        relabel_stream(inputs["parquet"], first, out, **kw)
    assert first.rows == N_ROWS and written == ["shard-00000.parquet", "shard-00001.parquet"]
    assert not (out / "shard-00002.parquet").exists() and not card_path(out).exists()
    written.append("resumed")
    second = CountingScorer(scorer)
    card = relabel_stream(inputs["parquet"], second, out, **kw)
    assert second.calls == 0  # pass 2 tags with the saved scores
    assert written[3:] == ["shard-00002.parquet", "shard-00003.parquet"]  # shards 0 and 1 not rewritten
    _same_as_reference(read_table(out), card, reference)
    third = CountingScorer(scorer)
    assert relabel_stream(inputs["parquet"], third, out, **kw).to_dict() == card.to_dict()  # a finished run
    assert third.calls == 0 and len(written) == 5


def test_another_run_in_the_folder_is_refused_unless_overwrite(inputs, scorer, tmp_path):
    out = tmp_path / "out"
    relabel_stream(inputs["csv"], scorer, out, num_bins=3, batch_rows=64, shard_rows=64)
    with pytest.raises(ConfigError, match=r"another relabel run \(changed: \['bins'\]\)"):
        relabel_stream(inputs["csv"], scorer, out, num_bins=4, batch_rows=64, shard_rows=64)
    card = relabel_stream(inputs["csv"], scorer, out, num_bins=4, batch_rows=64, shard_rows=64, overwrite=True)
    assert card.binning.k == 4 and len(read_table(out)) == N_ROWS


def test_train_reads_a_shard_folder_and_refuses_a_mismatch(inputs, scorer, tmp_path):
    from condtune.commands.train import main as train

    out = tmp_path / "tagged"
    relabel_stream(inputs["parquet"], scorer, out, num_bins=3, batch_rows=50, shard_rows=50)
    shard = out / "shard-00001.parquet"
    df = pd.read_parquet(shard)
    df.loc[3, "tagged_prompt"] = "Rating: 9 out of 3 stars.\n" + df.loc[3, "prompt"]
    df.to_parquet(shard, index=False)
    with pytest.raises(DataError, match="its rows differ from those its card"):
        train([f"data={out}", "model=none", f"output_dir={tmp_path / 'policy'}"])
    shard.unlink()
    with pytest.raises(DataError, match="shard listed in the manifest is missing"):
        train([f"data={out}", "model=none", f"output_dir={tmp_path / 'policy'}"])


def test_row_errors_name_the_datasets_row(tmp_path, scorer):
    rows = [{"prompt": "R:", "completion": f"text {i}"} for i in range(25)]
    rows[17]["completion"] = ""
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"bad.jsonl, row 18, column 'completion': empty text"):
        relabel_stream(data, scorer, tmp_path / "out", num_bins=2, batch_rows=4, shard_rows=10)


def test_cli_stream(inputs, scorer, tmp_path, capsys):
    from condtune.cli import main as cli

    scorer_dir = tmp_path / "scorer"
    scorer.save(scorer_dir)
    out = tmp_path / "tagged.jsonl"
    args = [
        "relabel",
        f"data={inputs['csv']}",
        f"scorer={scorer_dir}",
        "num_bins=3",
        "stream=true",
        f"output_path={out}",
    ]
    assert cli([*args, "shard_rows=100", "tag_style=token"]) == 0
    assert "tagged 130 rows" in capsys.readouterr().out and out.is_dir()
    card = TagCard.load(out)
    assert card.n_rows == N_ROWS and sum(card.binning.counts) == N_ROWS
    assert card.tag_format == TagFormat(style="token")
