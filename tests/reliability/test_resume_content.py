"""A resume knows its input by content, not by its name, size and modification time.

* streaming relabel: each shard's input digest is kept beside its state; a rerun (and pass 2 of the
  same run) compares every shard already scored or tagged with the rows it reads now. Other rows
  there (an input edited in place, same size, same mtime) are a one-line error before anything in
  out/ changes; the same rows (even with a new mtime) resume; rows not yet used may change;
* dpo, rloo, best-of-n: the run's record holds a digest of each input file (pairs, ratings, prompts),
  of the scorer folder and of the model's weights; another content is another run, refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.relabel import TagCard, card_path
from condtune.relabel_stream import MANIFEST, relabel_stream
from condtune.tables import read_table

N_ROWS, SHARD = 50, 10  # 5 shards of 10 rows; 2 scorer calls a shard (batch_rows=5)
KW = dict(num_bins=3, tag_columns=["domain"], batch_rows=5, shard_rows=SHARD)
REFUSED = r"changed since shard {i} \(rows {a}-{b}\) was written \(its rows differ\); rerun with overwrite=true"


class FakeScorer:
    """A deterministic scorer (no model) that counts the rows it scores and can be killed on a call."""

    meta = SimpleNamespace(name="fake", version=1)

    def __init__(self, fail_on: int | None = None):
        self.fail_on, self.calls, self.rows = fail_on, 0, 0

    def score_pairs(self, prompts, completions, **kw):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += len(completions)
        return [len(c) + sum(map(ord, c)) % 97 / 100 for c in completions]


def _rows(n: int = N_ROWS) -> list[dict]:
    return [
        {"prompt": "Review:", "completion": f"Row {i:02d} was {'good' if i % 2 else 'bad'}.", "domain": "movie"}
        for i in range(n)
    ]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _edit_in_place(path: Path, rows: list[dict]) -> None:
    """Rewrite ``path`` with ``rows``, keeping its byte size and modification time."""
    st = path.stat()
    _write(path, rows)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _swapped(rows: list[dict], i: int, j: int) -> list[dict]:
    rows = list(rows)
    rows[i], rows[j] = rows[j], rows[i]
    return rows


def _snapshot(out: Path) -> dict:
    """Every file of out/ and the card beside it: its bytes and modification time."""
    files = [p for p in out.rglob("*") if p.is_file()] + [p for p in [card_path(out)] if p.exists()]
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in files}


def _fresh(tmp_path: Path, rows: list[dict], name: str) -> tuple[pd.DataFrame, dict]:
    """An uninterrupted run on ``rows``: its table and card."""
    data = _write(tmp_path / f"{name}.jsonl", rows)
    card = relabel_stream(data, FakeScorer(), tmp_path / f"{name}_out", **KW)
    return read_table(tmp_path / f"{name}_out"), card.to_dict()


def _same(out: Path, card: TagCard, want: tuple[pd.DataFrame, dict]) -> None:
    pd.testing.assert_frame_equal(read_table(out), want[0])
    assert card.to_dict() == want[1]


@pytest.fixture
def after_shard_0(tmp_path) -> tuple[Path, Path]:
    """A streaming relabel killed in pass 1 right after shard 0 was scored: (input, out)."""
    data, out = _write(tmp_path / "data.jsonl", _rows()), tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        relabel_stream(data, FakeScorer(fail_on=3), out, **KW)
    assert sorted(p.name for p in (out / ".relabel").glob("scores-*")) == ["scores-00000.npy"]
    return data, out


# ----------------------------------------------------------------------------- pass 1 interrupted


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: _swapped(rows, 2, 3),  # two rows trade places: each would get the other's score
        lambda rows: [
            {**r, "completion": r["completion"].replace("bad", "sad")} if i == 4 else r for i, r in enumerate(rows)
        ],
        lambda rows: [{**r, "domain": "books"} if i == 0 else r for i, r in enumerate(rows)],  # a tag column's value
        lambda rows: _swapped(rows, 0, 30),  # a row of shard 0 traded with one of shard 3
    ],
    ids=["rows_swapped", "text_edited", "tag_column_edited", "row_from_later_shard"],
)
def test_a_done_shards_rows_changed_in_place_are_refused_and_nothing_changes(after_shard_0, tmp_path, change):
    data, out = after_shard_0
    _edit_in_place(data, change(_rows()))
    before = _snapshot(out)
    scorer = FakeScorer()
    with pytest.raises(DataError, match=REFUSED.format(i=0, a=1, b=10)) as info:
        relabel_stream(data, scorer, out, **KW)
    assert str(info.value).startswith(f"{data}: changed since shard 0") and "\n" not in str(info.value)
    assert scorer.calls == 0 and _snapshot(out) == before  # nothing scored, written or removed
    # restored: resumes, and finishes as an uninterrupted run would
    _edit_in_place(data, _rows())
    scorer = FakeScorer()
    card = relabel_stream(data, scorer, out, **KW)
    assert scorer.rows == N_ROWS - SHARD
    _same(out, card, _fresh(tmp_path, _rows(), "fresh"))


def test_the_command_refuses_in_one_line_and_overwrite_starts_afresh(tmp_path, tiny_encoder, monkeypatch, capsys):
    import condtune.relabel_stream as rs
    from condtune.cli import main as cli
    from condtune.scorer import Scorer

    scorer = Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path / "scorer")
    data, out = _write(tmp_path / "data.jsonl", _rows()), tmp_path / "out"
    args = ["relabel", f"data={data}", f"scorer={scorer}", "num_bins=3", "stream=true", "batch_rows=5", "shard_rows=10"]
    real, saved = rs._save_npy, []

    def killed_on_the_second(path, arr):
        if saved:
            raise KeyboardInterrupt
        saved.append(path.name)
        real(path, arr)

    monkeypatch.setattr(rs, "_save_npy", killed_on_the_second)
    assert cli([*args, f"output_path={out}"]) == 130
    monkeypatch.setattr(rs, "_save_npy", real)
    _edit_in_place(data, _swapped(_rows(), 0, 1))
    before = _snapshot(out)
    capsys.readouterr()
    assert cli([*args, f"output_path={out}"]) == 2
    (err,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # beside the progress bars
    assert err.startswith(f"condtune relabel: error: {data}: changed since shard 0 (rows 1-10) was written (its rows")
    assert _snapshot(out) == before
    assert cli([*args, f"output_path={out}", "overwrite=true"]) == 0  # afresh: the new rows, all of them
    assert read_table(out)["completion"].tolist() == [r["completion"] for r in _swapped(_rows(), 0, 1)]


@pytest.mark.parametrize("how", ["untouched", "touched", "copied_back"])
def test_the_same_rows_resume_even_with_a_new_mtime(after_shard_0, tmp_path, how):
    data, out = after_shard_0
    if how == "touched":
        os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 3_600 * 10**9))
    elif how == "copied_back":  # rewritten with the same bytes (a copy, a re-download): new inode and mtime
        text = data.read_text()
        data.unlink()
        data.write_text(text)
    scorer = FakeScorer()
    card = relabel_stream(data, scorer, out, **KW)
    assert scorer.rows == N_ROWS - SHARD  # shard 0 not scored again
    _same(out, card, _fresh(tmp_path, _rows(), "fresh"))


def test_rows_not_yet_used_may_change(after_shard_0, tmp_path):
    """Rows of shards not yet scored are read for the first time by the rerun: the result is the new input's."""
    data, out = after_shard_0
    new = _swapped(_rows(), 31, 42)
    _edit_in_place(data, new)
    card = relabel_stream(data, FakeScorer(), out, **KW)
    _same(out, card, _fresh(tmp_path, new, "fresh"))


def test_a_resume_with_another_batch_rows_reads_the_input_as_the_first_run_did(tmp_path):
    """pandas infers a column's type batch by batch (ints and nulls: float64 in one batch, object across
    batches of one row), so the input is read in the first run's batches: the digests still agree."""
    rows = [{**r, "n": i if i % 3 else None} for i, r in enumerate(_rows())]
    data, out = _write(tmp_path / "data.jsonl", rows), tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        relabel_stream(data, FakeScorer(fail_on=SHARD + 1), out, **{**KW, "batch_rows": 1})  # after shard 0
    scorer = FakeScorer()
    card = relabel_stream(data, scorer, out, **KW)  # batch_rows=5 now
    assert scorer.rows == N_ROWS - SHARD
    data_fresh = _write(tmp_path / "fresh.jsonl", rows)
    fresh = relabel_stream(data_fresh, FakeScorer(), tmp_path / "fresh_out", **{**KW, "batch_rows": 1})
    _same(out, card, (read_table(tmp_path / "fresh_out"), fresh.to_dict()))


def test_another_size_is_another_run(after_shard_0):
    data, out = after_shard_0
    _write(data, _rows(N_ROWS + 1))
    with pytest.raises(ConfigError, match=r"holds another relabel run \(changed: \['input'\]\)"):
        relabel_stream(data, FakeScorer(), out, **KW)


# ----------------------------------------------------------------------------- pass 2: the rows pass 1 scored


def test_pass_2_refuses_rows_that_pass_1_did_not_score(tmp_path, monkeypatch):
    """The input edited between the passes of one run: pass 2 tags shards 0 and 1 (their rows are those
    scored) and stops at shard 2, before writing it; restored, the rerun finishes as a fresh run would."""
    import condtune.relabel_stream as rs

    data, out = _write(tmp_path / "data.jsonl", _rows()), tmp_path / "out"
    real_fit = rs.Binning.fit

    def edit_then_fit(*a, **k):  # called once pass 1 has scored every shard
        _edit_in_place(data, _swapped(_rows(), 20, 21))
        return real_fit(*a, **k)

    monkeypatch.setattr(rs.Binning, "fit", staticmethod(edit_then_fit))
    with pytest.raises(DataError, match=REFUSED.format(i=2, a=21, b=30)):
        relabel_stream(data, FakeScorer(), out, **KW)
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.parquet", "shard-00001.parquet"]
    assert not card_path(out).exists()
    monkeypatch.setattr(rs.Binning, "fit", real_fit)
    _edit_in_place(data, _rows())
    scorer = FakeScorer()
    card = relabel_stream(data, scorer, out, **KW)
    assert scorer.calls == 0  # tagged with the scores pass 1 saved
    _same(out, card, _fresh(tmp_path, _rows(), "fresh"))


@pytest.mark.parametrize("shard", [0, 2])
def test_a_rerun_of_pass_2_refuses_changed_rows_of_a_scored_or_tagged_shard(tmp_path, monkeypatch, shard):
    """Killed in pass 2 after shard 0 was tagged (every shard scored). Rows changed in shard 0 (tagged):
    refused, nothing written. In shard 2 (scored, not tagged): pass 2 compares as it reads, so shard 1
    (its rows unchanged) is tagged first, as a resume would; shard 2 is refused before it is written,
    and nothing done before is rewritten."""
    import condtune.relabel_stream as rs

    data, out = _write(tmp_path / "data.jsonl", _rows()), tmp_path / "out"
    real_write = rs._write_shard

    def killed_after_one(df, path, fmt):
        if path.name != "shard-00000.parquet":
            raise KeyboardInterrupt
        real_write(df, path, fmt)

    monkeypatch.setattr(rs, "_write_shard", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        relabel_stream(data, FakeScorer(), out, **KW)  # pass 1 done; pass 2 tagged shard 0 only
    monkeypatch.setattr(rs, "_write_shard", real_write)
    first = shard * SHARD
    _edit_in_place(data, _swapped(_rows(), first + 5, first + 6))
    before, scorer = _snapshot(out), FakeScorer()
    with pytest.raises(DataError, match=REFUSED.format(i=shard, a=first + 1, b=first + SHARD)):
        relabel_stream(data, scorer, out, **KW)
    after = _snapshot(out)
    assert scorer.calls == 0 and not card_path(out).exists()
    if shard == 0:
        assert after == before
    else:
        assert {f: after[f][0] for f in before} == {f: h for f, (h, _) in before.items()}  # the same bytes
        assert sorted(Path(f).name for f in set(after) - set(before)) == ["shard-00001.parquet", "tagged-00001.json"]
        assert all(before[f] == after[f] for f in before if "00001" not in f)  # shard 1's rowhash rewritten alike


def test_a_finished_run_keeps_its_card_when_refused(tmp_path):
    data, out = _write(tmp_path / "data.jsonl", _rows()), tmp_path / "out"
    relabel_stream(data, FakeScorer(), out, **KW)
    _edit_in_place(data, _swapped(_rows(), 48, 49))
    before = _snapshot(out)
    with pytest.raises(DataError, match=REFUSED.format(i=4, a=41, b=50)):
        relabel_stream(data, FakeScorer(), out, **KW)
    assert _snapshot(out) == before and card_path(out).exists()  # still a complete folder `train` reads


# ----------------------------------------------------------------------------- the state itself


def test_a_done_shard_without_its_digest_is_refused(after_shard_0):
    data, out = after_shard_0
    (out / ".relabel" / "input-00000.json").unlink()
    with pytest.raises(DataError, match=r"input-00000.json: missing: shard 0 is done but"):
        relabel_stream(data, FakeScorer(), out, **KW)


def test_a_folder_of_an_older_condtune_resumes_as_it_did(after_shard_0, tmp_path):
    """Recorded with sizes and modification times and no digests: the same file resumes, its done shard's
    digest taken from the rows read now (what the older condtune trusted); a touched file is refused."""
    data, out = after_shard_0
    record = json.loads((out / "run.json").read_text())
    del record["input_digests"]
    record["input"]["files"] = [[data.name, data.stat().st_size, data.stat().st_mtime_ns]]
    (out / "run.json").write_text(json.dumps(record))
    (out / ".relabel" / "input-00000.json").unlink()
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["read_rows"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    old = (out / "run.json").read_bytes()
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # as the older condtune did: another mtime,
    with pytest.raises(ConfigError, match=r"holds another relabel run \(changed: \['input'"):  # another run
        relabel_stream(data, FakeScorer(), out, **KW)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    card = relabel_stream(data, FakeScorer(), out, **KW)
    assert (out / "run.json").read_bytes() == old  # its record kept as it was written
    assert (out / ".relabel" / "input-00000.json").exists()
    _same(out, card, _fresh(tmp_path, _rows(), "fresh"))
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["read_rows"] == KW["batch_rows"] and manifest["tagged"][0]["rows"] == SHARD


# ----------------------------------------------------------------------------- dpo, rloo, best-of-n


class Claimed(Exception):
    """Raised right after the recipe's claim of its run: the run is what it recorded (no training here)."""


@pytest.fixture
def inputs(tmp_path, tiny_lm, tiny_encoder):
    import shutil

    from condtune.scorer import Scorer

    d = tmp_path / "in"
    d.mkdir()
    model = Path(shutil.copytree(tiny_lm, d / "model"))
    scorer = Scorer.new(str(tiny_encoder), "regression", "item").save(d / "scorer")
    pairs = [{"prompt": "Review:", "chosen": f"Lovely film {i}.", "rejected": f"Dull film {i}."} for i in range(6)]
    _write(d / "pairs.jsonl", pairs)
    (d / "prompts.txt").write_text("Review: the plot\nTweet: today\n")
    return SimpleNamespace(model=model, scorer=scorer, pairs=d / "pairs.jsonl", prompts=d / "prompts.txt")


def _flip_last_byte(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # tensor data, not the header: the file still loads
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _first_file(folder: Path, pattern: str) -> Path:
    return sorted(folder.rglob(pattern))[0]


@pytest.mark.parametrize("job", ["dpo", "rloo", "best_of_n"])
def test_baselines_record_what_their_inputs_hold(tmp_path, inputs, monkeypatch, job):
    import importlib

    from condtune import checkpointing

    recipe = importlib.import_module(f"condtune.commands.{job}")

    claim_run = checkpointing.claim_run

    def claim_then_stop(*a, **k):
        claim_run(*a, **k)
        raise Claimed

    monkeypatch.setattr(checkpointing, "claim_run", claim_then_stop)  # what claim_command_run calls
    out = tmp_path / "out"
    args = [f"model={inputs.model}", f"output_dir={out}"]
    if job == "dpo":
        args.append(f"pairs={inputs.pairs}")
        data, key = inputs.pairs, "pairs_digest"
    else:
        args += [f"scorer={inputs.scorer}", f"prompts={inputs.prompts}"]
        data, key = inputs.prompts, "prompts_digest"

    def claims():
        with pytest.raises(Claimed):
            recipe.main(args)

    claims()
    record = json.loads((out / "run.json").read_text())
    assert record[key] and record["model_digest"]
    claims()  # the same inputs: the same run
    text, st = data.read_text(), data.stat()
    data.write_text("".join(line + "\n" for line in reversed(text.splitlines())))  # other order, same size
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ConfigError, match=rf"changed: \['{key}'\]"):
        recipe.main(args)
    data.write_text(text)
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))  # a new mtime, same content
    claims()
    weights = _first_file(inputs.model, "*.safetensors")
    _flip_last_byte(weights)
    with pytest.raises(ConfigError, match=r"changed: \['model_digest'\]"):
        recipe.main(args)
    _flip_last_byte(weights)
    claims()
    if job != "dpo":
        head = inputs.scorer / "head.safetensors"
        _flip_last_byte(head)
        with pytest.raises(ConfigError, match=r"changed: \['scorer_digest'\]"):
            recipe.main(args)
        _flip_last_byte(head)
        claims()
    # a run recorded before the digests were: resumes as it did (its record kept as it was)
    legacy = {k: v for k, v in record.items() if not k.endswith("_digest")}
    (out / "run.json").write_text(json.dumps(legacy))
    claims()
    assert json.loads((out / "run.json").read_text()) == legacy
