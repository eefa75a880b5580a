"""Bad settings and bad data get a one-line error (exit 2) naming the file, row, column or setting,
before any training or scoring starts, and never replace a good output: duplicate item ids on two
texts, scorer optimisation settings out of range, val_fraction out of range or leaving nothing to
train or evaluate on, normalize=rater without rater ids, --config naming a folder, and score bins
that cannot be filled (k <= 1, more bins than distinct texts or scores)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from condtune.config import ConfigError
from condtune.errors import DataError
from condtune.ratings import PointwiseSpec, load_pointwise
from condtune.relabel import relabel
from tests.conftest import run_cli


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- duplicate item ids


def test_an_item_id_on_two_texts_is_refused_naming_both_rows(tmp_path, capsys, old_scorer):
    rows = [
        {"item_id": "a", "text": "Lovely film.", "score": 3, "rater": "r1"},
        {"item_id": "b", "text": "Dull film.", "score": -2, "rater": "r1"},
        {"item_id": "a", "text": "Lovely film.", "score": 2, "rater": "r2"},  # same text, same id: fine
        {"item_id": "a", "text": "Awful film.", "score": -4, "rater": "r3"},  # other text, same id
    ]
    path = _write(tmp_path / "r.jsonl", rows)
    spec = PointwiseSpec(item_col="item_id", rater_col="rater")
    with pytest.raises(DataError, match=r"row 4, column 'item_id': item id 'a' is on two different texts: row 1"):
        load_pointwise(path, spec)
    rc, err = run_cli(
        capsys,
        ["scorer", "train", f"ratings={path}", "columns.item_col=item_id", "backbone=none", f"output_dir={old_scorer}"],
    )
    assert rc == 2 and "r.jsonl, row 4" in err and "'Awful film.'" in err and "'Lovely film.'" in err
    assert (old_scorer / "scorer.json").read_text() == '{"trained": true}\n'
    # the same id on the same text still groups several ratings of one item
    ok = load_pointwise(_write(tmp_path / "ok.jsonl", rows[:3]), spec)
    assert ok["item_id"].tolist() == ["a", "b", "a"]


def test_a_missing_item_id_is_refused(tmp_path):
    path = _write(
        tmp_path / "r.jsonl", [{"item_id": "a", "text": "x", "score": 1}, {"item_id": None, "text": "y", "score": 2}]
    )
    with pytest.raises(DataError, match=r"row 2, column 'item_id': missing item id"):
        load_pointwise(path, PointwiseSpec(item_col="item_id"))


# ----------------------------------------------------------------------------- scorer settings


@pytest.mark.parametrize(
    "setting, says",
    [
        (
            "optim.num_train_epochs=0",
            "optim: num_train_epochs=0.0 is out of range",
        ),  # would replace a trained scorer by an untrained one
        ("optim.num_train_epochs=-1", "optim: num_train_epochs=-1.0 is out of range"),
        ("optim.learning_rate=0", "optim: learning_rate=0.0 is out of range"),
        ("optim.learning_rate=-1e-5", "optim: learning_rate=-1e-05 is out of range"),
        ("optim.per_device_train_batch_size=0", "optim: per_device_train_batch_size=0 is out of range"),
        ("optim.per_device_train_batch_size=-4", "optim: per_device_train_batch_size=-4 is out of range"),
        ("optim.warmup_ratio=1.5", "optim: warmup_ratio=1.5 is out of range"),
        ("val_fraction=1", "val_fraction=1.0 is out of range"),
        ("val_fraction=-0.1", "val_fraction=-0.1 is out of range"),
        ("val_fraction=1.5", "val_fraction=1.5 is out of range"),
    ],
)
def test_scorer_settings_out_of_range_are_refused_and_the_old_scorer_kept(
    ratings_file, old_scorer, capsys, setting, says
):
    rc, err = run_cli(
        capsys, ["scorer", "train", f"ratings={ratings_file}", setting, "backbone=none", f"output_dir={old_scorer}"]
    )
    assert rc == 2 and says in err and err.count("\n") == 1, err  # one line
    assert (old_scorer / "scorer.json").read_text() == '{"trained": true}\n'


def test_val_fraction_that_leaves_nothing_to_train_or_hold_out_is_refused_before_training(
    tmp_path, ratings_file, capsys, old_scorer
):
    one = _write(tmp_path / "one.jsonl", [{"text": "Fine.", "score": 1}])
    for args, says in [
        ([f"ratings={one}"], "one.jsonl has 1 items, and val_fraction=0.1 leave"),  # a one-row dataset
        ([f"ratings={one}", "val_fraction=0"], "leave 1 to train on"),
        ([f"ratings={ratings_file}", "val_fraction=0.001"], "holds out 0; held-out metrics need at least 2"),
        ([f"ratings={ratings_file}", "max_train_samples=1"], "max_train_samples=1 leave 1 to train on"),
    ]:
        # backbone=none would fail on loading: these must stop before any model is loaded or trained
        rc, err = run_cli(capsys, ["scorer", "train", *args, "backbone=none", f"output_dir={old_scorer}"])
        assert rc == 2 and says in err, err
    assert (old_scorer / "scorer.json").read_text() == '{"trained": true}\n'


def test_val_fraction_zero_trains_on_everything_and_reports_no_metrics(tmp_path, ratings_file, tiny_encoder, capsys):
    out = tmp_path / "scorer"
    args = ["scorer", "train", f"ratings={ratings_file}", f"backbone={tiny_encoder}", "val_fraction=0"]
    rc, _ = run_cli(capsys, [*args, "optim.num_train_epochs=0.2", f"output_dir={out}"])
    assert rc == 0 and (out / "head.safetensors").exists()
    assert json.loads((out / "metrics.json").read_text())["metrics"] == {}


def test_normalize_rater_without_rater_ids_names_the_setting_or_row(tmp_path, ratings_file, capsys, old_scorer):
    base = ["scorer", "train", "normalize=rater", "backbone=none", f"output_dir={old_scorer}"]
    rc, err = run_cli(capsys, [*base, f"ratings={ratings_file}"])
    assert rc == 2 and "normalize=rater needs the rater id" in err and "columns.rater_col" in err
    rows = [{"text": f"Text {i}.", "score": i % 3, "rater": "ann" if i != 4 else None} for i in range(30)]
    path = _write(tmp_path / "r.jsonl", rows)
    rc, err = run_cli(capsys, [*base, f"ratings={path}", "columns.rater_col=rater"])
    assert rc == 2 and "r.jsonl, row 5, column 'rater': missing rater id" in err
    rc, err = run_cli(capsys, [*base, "ratings=vader"])
    assert rc == 2 and "VADER ratings carry no rater ids" in err
    assert (old_scorer / "scorer.json").read_text() == '{"trained": true}\n'


def test_config_naming_a_folder_is_a_clear_error(tmp_path, capsys):
    rc, err = run_cli(capsys, ["relabel", "--config", str(tmp_path)])
    assert rc == 2 and f"{tmp_path}: is a folder; --config takes a YAML file" in err
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"k: 3\nscorer: caf\xe9\n")
    rc, err = run_cli(capsys, ["relabel", "--config", str(bad)])
    assert rc == 2 and "latin1.yaml: not UTF-8 text" in err


# ----------------------------------------------------------------------------- score bins


class CountingScorer:
    """A stand-in scorer: records how many texts it was asked to score."""

    def __init__(self, constant: float | None = None):
        self.calls, self.constant = 0, constant

    def score_pairs(self, prompts, completions, **kw):
        self.calls += len(completions)
        if self.constant is not None:
            return np.full(len(completions), self.constant)
        return np.array([float(len(c)) for c in completions])


def _corpus(texts):
    return pd.DataFrame({"prompt": ["Review:"] * len(texts), "completion": texts})


def test_num_bins_of_one_or_less_is_refused(tmp_path, capsys):
    for k in ("1", "0", "-3"):
        rc, err = run_cli(
            capsys, ["relabel", f"num_bins={k}", "data=nowhere.jsonl", f"output_path={tmp_path / 't.jsonl'}"]
        )
        assert rc == 2 and f"num_bins={k}: score bins need num_bins >= 2" in err
    with pytest.raises(ConfigError, match="num_bins=1"):
        relabel(_corpus(["a", "bb"]), CountingScorer(), num_bins=1)


def test_more_bins_than_distinct_texts_is_refused_before_scoring(tmp_path, capsys):
    scorer = CountingScorer()
    df = _corpus(["Good.", "Bad.", "Good.", "Fine, I guess.", "Bad."])
    with pytest.raises(
        ConfigError, match=r"num_bins=4: corpus.jsonl has 3 distinct texts \(5 rows\).*use num_bins <= 3"
    ):
        relabel(df, scorer, num_bins=4, source="corpus.jsonl")
    assert scorer.calls == 0  # refused before any text was scored
    tagged, card = relabel(df, scorer, num_bins=3)
    assert card.binning.k == 3 and scorer.calls == 5


def test_a_scorer_with_too_few_distinct_scores_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"num_bins=3: the scorer gives the 4 rows of d.jsonl 1 distinct scores"):
        relabel(_corpus(["a", "b", "c", "d"]), CountingScorer(constant=0.5), num_bins=3, source="d.jsonl")
