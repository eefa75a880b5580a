"""Configs and data mean what they say: nothing a user wrote is silently dropped or silently
meaningless. A key given twice in a YAML mapping (at any depth), ``--config`` given twice and a
setting given two values on the command line are errors naming the key; the YAML loader is safe and
bounded (file size, alias expansion, nesting). Ratings whose scores are all equal, preference pairs
whose two texts differ only in whitespace, one rater rating one item twice (unless
``columns.duplicate_ratings`` says what to do) and a table header naming a column twice are errors
naming the file, row and column. Every refusal is one line, exit 2, before any model is loaded or
trained, and leaves an earlier good output alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import yaml

from condtune.cli import main as cli
from condtune.config import ConfigError, parse, with_overrides
from condtune.config_yaml import MAX_CONFIG_BYTES, ConfigLoader, load_yaml
from condtune.errors import DataError
from condtune.ratings import PointwiseSpec, load_pairwise, load_pointwise, split_items
from condtune.sampling import SamplingConfig
from condtune.scorer_training import ScorerTrainConfig
from condtune.tables import read_table
from tests.conftest import run_cli


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _refused(capsys, args, *says):
    """Exit 2 with one error line that contains every ``says``."""
    rc, err = run_cli(capsys, args)
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert rc == 2 and len(lines) == 1, err
    for s in says:
        assert s in lines[0], lines[0]
    return lines[0]


def _untouched(old_scorer):
    assert (old_scorer / "scorer.json").read_text() == '{"trained": true}\n'


# backbone=none fails when the model is loaded: a refusal with it proves the check ran before any model
ST = ["scorer", "train", "backbone=none"]


@dataclass
class Demo:
    name: str = "x"
    lr: float = 1e-4
    flag: bool = False
    items: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


# ============================================================================= YAML: duplicate keys


def test_a_yaml_key_given_twice_at_the_top_level_is_refused_naming_file_line_and_key(
    tmp_path, ratings_file, capsys, old_scorer
):
    cfg = tmp_path / "scorer.yaml"  # the found case: a second optim: block, and the first one was lost
    cfg.write_text(
        f"ratings: {ratings_file}\noptim:\n  learning_rate: 1.0e-4\n  num_train_epochs: 1\nseed: 3\n"
        "optim:\n  per_device_train_batch_size: 8\n"
    )
    with pytest.raises(ConfigError, match=r"scorer.yaml: duplicate key 'optim' at line 6 \(first at line 2\)"):
        load_yaml(cfg)
    line = _refused(capsys, [*ST, "--config", str(cfg), f"output_dir={old_scorer}"], "scorer.yaml", "'optim'", "line 6")
    assert line.startswith("condtune scorer train: error: ")
    _untouched(old_scorer)


@pytest.mark.parametrize(
    "text, says",
    [
        (
            "optim:\n  learning_rate: 1.0e-4\n  num_train_epochs: 1\n  learning_rate: 3.0e-4\n",
            r"duplicate key 'optim.learning_rate' at line 4 \(first at line 2\)",
        ),
        ("optim: {learning_rate: 1.0e-4, learning_rate: 3.0e-4}\n", r"duplicate key 'optim.learning_rate' at line 1"),
        (
            "domains:\n  - tweets\ncolumns:\n  text_col: a\n  text_col: b\n",
            r"duplicate key 'columns.text_col' at line 5",
        ),
        ("sweeps:\n  - {a: 1}\n  - {b: 1, b: 2}\n", r"duplicate key 'sweeps\[1\].b' at line 3"),  # inside a list item
        ("seed: 1\nseed: 1\n", r"duplicate key 'seed' at line 2"),  # even the same value: a file says it once
        ("1: a\n1.0: b\n", r"duplicate key '1.0' at line 2"),  # equal as keys, as the mapping would make them
    ],
    ids=["nested", "nested_flow", "nested_deeper", "in_a_list", "same_value", "equal_keys"],
)
def test_a_yaml_key_given_twice_at_any_depth_is_refused(tmp_path, text, says):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=r"c.yaml: " + says):
        load_yaml(cfg)


def test_a_nested_duplicate_through_the_cli_is_one_line(tmp_path, ratings_file, capsys, old_scorer):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"ratings: {ratings_file}\noptim:\n  learning_rate: 1.0e-4\n  learning_rate: 3.0e-4\n")
    _refused(
        capsys, [*ST, "--config", str(cfg), f"output_dir={old_scorer}"], "c.yaml", "'optim.learning_rate' at line 4"
    )
    _untouched(old_scorer)


def test_a_merge_key_may_still_be_overridden_and_good_configs_load(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 5\nlist: [&i 1, *i, *i]\n")
    assert load_yaml(cfg) == {"base": {"x": 1, "y": 2}, "other": {"x": 5, "y": 2}, "list": [1, 1, 1]}
    assert yaml.load("a: 1\nb: {c: [1, 2]}\n", Loader=ConfigLoader) == {"a": 1, "b": {"c": [1, 2]}}
    assert issubclass(ConfigLoader, yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError):  # safe: no Python objects
        yaml.load("!!python/object/apply:os.system ['true']", Loader=ConfigLoader)


# ============================================================================= YAML: bounded


def test_a_config_file_larger_than_the_limit_is_refused_unread(tmp_path, capsys):
    cfg = tmp_path / "big.yaml"
    cfg.write_text("# " + "x" * MAX_CONFIG_BYTES + "\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"big.yaml: larger than 1,000,000 bytes"):
        load_yaml(cfg)
    _refused(capsys, [*ST, "--config", str(cfg)], "big.yaml: larger than")


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):  # 10**10 values once expanded, in 10 short lines
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"bomb.yaml: expands to more than 100,000 values"):
        load_yaml(cfg)
    _refused(capsys, [*ST, "--config", str(cfg)], "bomb.yaml: expands to more than")


@pytest.mark.parametrize(
    "text, says",
    [
        ("a: &a [1, *a]\n", "a recursive alias"),
        ("a: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
    ],
    ids=["recursive_alias", "deep_nesting"],
)
def test_recursive_and_deeply_nested_yaml_is_refused(tmp_path, text, says):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=f"c.yaml: {says}"):
        load_yaml(cfg)


# ============================================================================= the command line


def test_config_given_twice_is_refused(tmp_path, capsys, old_scorer):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("seed: 1\n")
    b.write_text("optim:\n  learning_rate: 1.0e-3\n")
    with pytest.raises(ConfigError, match=r"--config is given twice \(.*a.yaml, then .*b.yaml\)"):
        parse(Demo, ["--config", str(a), f"--config={b}"])
    _refused(
        capsys, [*ST, "--config", str(a), "--config", str(b), f"output_dir={old_scorer}"], "--config is given twice"
    )
    _untouched(old_scorer)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["lr=1", "lr=2"], "lr is given twice (lr=1, then lr=2)"),
        (["--lr", "1", "--lr=2"], "lr is given twice (--lr 1, then --lr=2)"),
        (["sampling.top_p=0.9", "--sampling.top_p", "0.5"], "sampling.top_p is given twice"),
        (["sampling.top_p=0.9", "sampling=x"], "sampling is given twice (sampling.top_p=0.9, then sampling=x)"),
        (["--flag", "--no-flag"], "flag is given twice (--flag, then --no-flag)"),
        (["--name", "a", "name=b"], "name is given twice"),
        (["--items", "a", "items=b"], "items is given twice (--items a, then items=b)"),
        (["items=[a]", "items=[b]"], "repeat --items VALUE to add items"),
        (["--tags", "x=1", "tags=y=2"], "tags is given twice"),
        (["--tags", "x=1", "--tags", "x=2"], "tags: x is given twice (x=1, then x=2)"),
    ],
    ids=[
        "kv",
        "flags",
        "dotted",
        "section_and_key",
        "bool",
        "mixed",
        "list_mixed",
        "list_kv",
        "dict_mixed",
        "dict_key",
    ],
)
def test_a_setting_given_two_values_is_refused_naming_it(argv, says):
    with pytest.raises(ConfigError) as exc:
        parse(Demo, argv)
    assert says in str(exc.value) and str(exc.value).startswith("command line: ")


def test_a_repeated_setting_through_the_cli_is_one_line_before_any_work(ratings_file, capsys, old_scorer):
    args = [
        *ST,
        f"ratings={ratings_file}",
        "optim.learning_rate=1e-4",
        "--optim.learning_rate",
        "3e-4",
        f"output_dir={old_scorer}",
    ]
    _refused(
        capsys, args, "optim.learning_rate is given twice (optim.learning_rate=1e-4, then --optim.learning_rate 3e-4)"
    )
    _refused(
        capsys,
        [*ST, f"ratings={ratings_file}", f"output_dir={old_scorer}", "output_dir=elsewhere"],
        "output_dir is given twice",
    )
    _untouched(old_scorer)


def test_lists_and_dicts_still_accumulate_and_a_same_value_repeat_is_let_be():
    cfg = parse(Demo, ["--items", "a", "--items", "b c", "--tags", "x=1", "--tags", "y=2", "z=3"])
    assert cfg.items == ["a", "b c"] and cfg.tags == {"x": "1", "y": "2", "z": "3"}
    assert parse(Demo, ["items=[a,b]", "tags=x=1,y=2"]).items == ["a", "b"]
    cfg = parse(Demo, ["lr=1", "lr=1", "--flag", "--flag", "--tags", "x=1", "--tags", "x=1"])
    assert (cfg.lr, cfg.flag, cfg.tags) == (1.0, True, {"x": "1"})


def test_overrides_strings_refuse_a_key_twice():
    assert with_overrides(Demo(), "lr=1 sampling.top_p=0.5").sampling.top_p == 0.5
    with pytest.raises(ConfigError, match=r"overrides 'lr=1 lr=2': lr is given twice"):
        with_overrides(Demo(), "lr=1 lr=2")


def test_a_yaml_value_on_the_command_line_with_a_duplicate_key_is_refused():
    with pytest.raises(ConfigError, match=r"duplicate key '\[0\].a'"):
        parse(Demo, ["items=[{a: 1, a: 2}]"])


# ============================================================================= constant scores


def test_ratings_whose_scores_are_all_equal_are_refused_before_training(tmp_path, capsys, old_scorer):
    rows = [{"text": f"Text {i} was fine.", "rating": 2} for i in range(30)]
    path = _write(tmp_path / "flat.jsonl", rows)
    line = _refused(
        capsys,
        [*ST, f"ratings={path}", "columns.score_col=rating", f"output_dir={old_scorer}"],
        "flat.jsonl, column 'rating': all 30 scores are 2",
        "NaN",
    )
    assert "row" not in line.split("error: ")[1].split(":")[0]
    csv = tmp_path / "flat.csv"
    pd.DataFrame({"text": [f"T{i}" for i in range(10)], "score": [1.5] * 10}).to_csv(csv, index=False)
    _refused(
        capsys, [*ST, f"ratings={csv}", f"output_dir={old_scorer}"], "flat.csv, column 'score': all 10 scores are 1.5"
    )
    _untouched(old_scorer)


def _split_scores(n, vary_held: bool, vary_train: bool, seed=0, val_fraction=0.25):
    held = split_items(np.arange(n), val_fraction, seed)  # the items train_pointwise holds out (one rating each)
    rows = []
    for i in range(n):
        varies = vary_held if held[i] else vary_train
        rows.append({"text": f"Text number {i}.", "score": (i % 3) if varies else (3 if held[i] else 1)})
    return rows


@pytest.mark.parametrize(
    "vary_held, vary_train, says",
    [
        (False, True, "held-out items all have the mean score 3"),
        (True, False, "training items all have the target 1"),
    ],
    ids=["held_out_constant", "train_constant"],
)
def test_a_constant_target_after_the_split_is_refused_before_training(
    tmp_path, capsys, old_scorer, vary_held, vary_train, says
):
    path = _write(tmp_path / "r.jsonl", _split_scores(40, vary_held, vary_train))
    _refused(capsys, [*ST, f"ratings={path}", "val_fraction=0.25", f"output_dir={old_scorer}"], "r.jsonl", says)
    _untouched(old_scorer)


def test_one_rating_is_left_to_the_item_count_check(tmp_path, capsys):
    one = _write(tmp_path / "one.jsonl", [{"text": "Fine.", "score": 1}])
    _refused(capsys, [*ST, f"ratings={one}", "val_fraction=0"], "leave 1 to train on")


# ============================================================================= pairs identical but for whitespace


@pytest.mark.parametrize(
    "chosen, rejected, extra",
    [
        ("It was  great.", " It was great.\n", " (they differ only in whitespace)"),
        ("Fine\tfilm", "Fine film", " (they differ only in whitespace)"),
        ("same", "same", ""),
    ],
    ids=["spaces", "tab", "exact"],
)
def test_a_pair_whose_texts_differ_only_in_whitespace_is_refused_naming_the_row(tmp_path, chosen, rejected, extra):
    rows = [
        {"prompt": "R:", "chosen": "Good.", "rejected": "Bad."},
        {"prompt": "R:", "chosen": chosen, "rejected": rejected},
    ]
    path = _write(tmp_path / "p.jsonl", rows)
    with pytest.raises(DataError) as exc:
        load_pairwise(path)
    assert f"p.jsonl, row 2, column 'rejected': chosen and rejected are identical{extra};" in str(exc.value)


def test_whitespace_identical_pairs_through_the_cli(tmp_path, pairs_file, capsys, old_scorer):
    rows = [json.loads(ln) for ln in pairs_file.read_text().splitlines()]
    rows[6]["rejected"] = "  " + rows[6]["chosen"].replace(" ", "   ")
    path = _write(tmp_path / "p.jsonl", rows)
    args = [*ST, f"ratings={path}", "objective=bradley_terry", f"output_dir={old_scorer}"]
    _refused(capsys, args, "p.jsonl, row 7, column 'rejected'", "differ only in whitespace")
    _untouched(old_scorer)
    assert len(load_pairwise(pairs_file)) == 40  # the good fixture still loads


# ============================================================================= one rater, one item, twice


DUPES = [
    {"item_id": "a", "text": "Lovely film.", "score": 3, "rater": "ann"},
    {"item_id": "b", "text": "Dull film.", "score": -2, "rater": "ann"},
    {"item_id": "a", "text": "Lovely film.", "score": 2, "rater": "bob"},
    {"item_id": "a", "text": "Lovely film.", "score": 1, "rater": "ann"},  # ann again, on a
    {"item_id": "b", "text": "Dull film.", "score": -3, "rater": None},  # no rater id: never a repeat
    {"item_id": "b", "text": "Dull film.", "score": -4, "rater": None},
]


def test_a_rater_rating_an_item_twice_is_refused_naming_both_rows(tmp_path, capsys, old_scorer):
    path = _write(tmp_path / "r.jsonl", DUPES)
    spec = PointwiseSpec(item_col="item_id", rater_col="rater")
    with pytest.raises(
        DataError, match=r"r.jsonl, row 4, column 'rater': rater 'ann' rated item 'a' twice: rows 1 and 4"
    ):
        load_pointwise(path, spec)
    with pytest.raises(DataError, match=r"row 4, column 'rater': rater 'ann' rated the text 'Lovely film.' twice"):
        load_pointwise(path, PointwiseSpec(rater_col="rater"))  # items by identical text
    args = [*ST, f"ratings={path}", "columns.item_col=item_id", "columns.rater_col=rater", f"output_dir={old_scorer}"]
    _refused(capsys, args, "r.jsonl, row 4, column 'rater'", "rows 1 and 4", "columns.duplicate_ratings=mean")
    _untouched(old_scorer)


def test_duplicate_ratings_mean_or_keep_says_what_to_do_with_them(tmp_path):
    path = _write(tmp_path / "r.jsonl", DUPES)
    mean = load_pointwise(path, PointwiseSpec(item_col="item_id", rater_col="rater", duplicate_ratings="mean"))
    assert mean["score"].tolist() == [2.0, -2.0, 2.0, -3.0, -4.0]  # ann's 3 and 1 on a: one rating of 2
    keep = load_pointwise(path, PointwiseSpec(item_col="item_id", rater_col="rater", duplicate_ratings="keep"))
    assert keep["score"].tolist() == [3.0, -2.0, 2.0, 1.0, -3.0, -4.0]
    with pytest.raises(ConfigError, match=r"duplicate_ratings: 'twice' is not one of"):
        parse(ScorerTrainConfig, ["columns.duplicate_ratings=twice"])
    assert parse(ScorerTrainConfig, ["columns.duplicate_ratings=mean"]).columns.duplicate_ratings == "mean"


def test_the_fixtures_and_vader_pass_every_new_check(ratings_file, capsys, tmp_path, monkeypatch):
    spec = PointwiseSpec(item_col="item_id", rater_col="rater")
    assert len(load_pointwise(ratings_file, spec)) == 240  # the default (error) reads the fixture whole
    assert PointwiseSpec().duplicate_ratings == "error"
    from condtune.vader import load_vader

    assert load_vader(domains=["movie"])["rater"].isna().all()  # anonymous: no rater, so never a repeat
    # ratings=vader gets past every data check, up to where the scorer is made (stopped there: no model)
    import condtune.scorer_training as st

    def reached(*args, **kw):
        raise ConfigError("reached the scorer")

    monkeypatch.setattr(st.Scorer, "new", reached)
    _refused(capsys, [*ST, "ratings=vader", "domains=[movie]", f"output_dir={tmp_path / 'sc'}"], "reached the scorer")
    _refused(capsys, [*ST, f"ratings={ratings_file}", "columns.rater_col=rater", "columns.item_col=item_id"], "reached")


# ============================================================================= duplicate headers


@pytest.mark.parametrize(
    "name, content, says",
    [
        (
            "r.csv",
            "text,score,score\nGood,1,2\nBad,-1,-2\n",
            "r.csv, column 'score': the header names this column twice",
        ),
        (
            "r.tsv",
            "text\tscore\ttext\nGood\t1\tx\nBad\t-1\ty\n",
            "r.tsv, column 'text': the header names this column twice",
        ),
        (
            "r.csv",
            '"text","score","text"\nGood,1,x\n',
            "column 'text': the header names this column twice (columns 1 and 3",
        ),
        (
            "r.json",
            '[{"text": "Good", "score": 1, "score": 2}]',
            "r.json, column 'score': a record gives this key twice",
        ),
    ],
    ids=["csv", "tsv", "csv_quoted", "json_record"],
)
def test_a_column_named_twice_is_refused_naming_file_and_column(tmp_path, capsys, old_scorer, name, content, says):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as exc:
        read_table(path)
    assert says in str(exc.value)
    _refused(capsys, [*ST, f"ratings={path}", f"output_dir={old_scorer}"], says)
    _untouched(old_scorer)


def test_a_good_csv_still_reads(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(",text,score\n0,Good,1\n1,Bad,-1\n")  # one blank header name (an index column) is fine
    assert list(read_table(path).columns) == ["Unnamed: 0", "text", "score"]


def test_a_jsonl_record_giving_a_key_twice_is_refused_naming_the_row(tmp_path, capsys):
    from condtune.io import read_jsonl

    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "Fine.", "score": 1}\n{"text": "Bad.", "score": -2, "score": 3}\n')
    with pytest.raises(DataError, match=r"r.jsonl, row 2, column 'score': a record gives this key twice"):
        read_jsonl(path)
    rc = cli(["scorer", "train", f"ratings={path}", "backbone=none", f"output_dir={tmp_path / 's'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "row 2, column 'score': a record gives this key twice" in err and "Traceback" not in err
