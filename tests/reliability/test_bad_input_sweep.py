"""The bad-input sweep: every command, tried the way a hostile new user would, as data.

Each :class:`Case` is one command line with one thing wrong (a bad setting value, an unknown key,
a wrong type, a missing, damaged or empty file, a folder where a file belongs, wrong columns, bad
rows, out-of-range numbers, nan/inf, conflicting options ...) and the substring its error must
contain: the setting, file, row or column it names. Each runs the CLI in-process, in a folder of
its own that already holds a good output (``{out}``, ``{outfile}``) and copies of small good
inputs, on the tiny models of tests/conftest.py, and must end with

* exit code 2, no traceback, and a one-line error (``condtune <job>: error: ...``) that contains
  the case's ``says``; or, for the cases whose right answer is a warning (a requested score beyond
  the policy's top bin is clamped), exit 0 and a warning that contains ``says``;
* every file that was in its folder before, byte for byte the same (nothing good overwritten).

``python tests/reliability/test_bad_input_sweep.py`` runs the sweep outside pytest and prints the
counts table of docs/reliability.md (per command and kind of badness: tried / clear errors /
warnings / tracebacks / silent acceptances / outputs overwritten).
"""

# ruff: noqa: E501 -- the cases are a table, one case per line

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shlex
import shutil
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from tests.conftest import later_wins  # noqa: E402 (after the path, for the script)

SENTINEL = b"a good output of an earlier run: a refused command must leave it alone\n"


# ============================================================================= the cases (data)


@dataclass(frozen=True)
class Case:
    id: str
    command: str
    """the job, as typed: 'scorer train', 'generate', ..."""
    kind: str
    """what kind of badness"""
    argv: str
    """the command line after the job (shlex-split after the placeholders are filled)"""
    says: str
    """what the one-line error (or, expect='warn', the warning) must contain"""
    files: tuple[tuple[str, str | bytes], ...] = ()
    """files written into the case's folder first (a name ending in '/' is a folder)"""
    prep: str | None = None
    """a named setup step (see PREPS): a damaged copy of a saved scorer or policy, ..."""
    expect: str = "error"
    """'error' (exit 2, one line) or 'warn' (exit 0 with a warning)"""


def jl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _rows(n: int, **extra) -> list[dict]:
    return [
        {"text": f"Text number {i} was {'good' if i % 2 else 'bad'}.", "score": i % 5 - 2, **extra} for i in range(n)
    ]


GOOD_RATINGS = _rows(24)
BAD_SCORES = {
    "score_text": ("wrong type", "good", "row 3, column 'score': expected a finite number, got 'good'"),
    "score_bool": ("wrong type", True, "row 3, column 'score': expected a finite number, got True"),
    "score_null": ("bad rows", None, "row 3, column 'score': expected a finite number"),
    "score_list": ("wrong type", [1, 2], "row 3, column 'score'"),
    "score_out_of_range": ("out-of-range number", 9, "row 3, column 'score': score 9 is outside the declared range"),
    "score_below_range": ("out-of-range number", -12, "row 3, column 'score': score -12 is outside"),
}


def _ratings_with(row: int, **change) -> str:
    rows = [dict(r) for r in GOOD_RATINGS]
    rows[row - 1].update(change)
    return jl(*rows)


# the good command lines each command's cases start from (the tiny models, short runs, a good out folder)
ST = "scorer train backbone={enc} optim.num_train_epochs=0.5 optim.per_device_train_batch_size=8 val_fraction=0.25 output_dir={out}"
SE = "scorer eval scorer={scorer}"
RL = "relabel scorer={scorer} num_bins=2 output_path={outfile}"
TR = "train model={lm} sft.max_steps=1 sft.per_device_train_batch_size=4 output_dir={out}"
GE = "generate model={policy} num_return_sequences=1 sampling.max_new_tokens=2 prompt=Review:"
SA = "sample model={lm} prompts={prompts} num_return_sequences=1 sampling.max_new_tokens=2 output_path={outfile}"
RA = "rate"
DP = "dpo model={lm} dpo.checkpoints=[1] dpo.per_device_train_batch_size=2 output_dir={out}"
RO = "rloo model={lm} scorer={scorer} prompts={prompts} rloo.checkpoints=[1] output_dir={out}"
BN = "best-of-n model={lm} scorer={scorer} prompts={prompts} n=2 sampling.max_new_tokens=2 output_dir={out}"
PP = "ppo model={lm} prompts={prompts} max_steps=1 per_device_train_batch_size=2 mini_batch_size=2 output_dir={out}"
BE = "bench model={lm} methods=[best_of_n] seeds=[0] output_dir={out}"
QS = "quickstart model={lm} scorer_backbone={enc} output_dir={out}"

# fmt: off
CASES_RAW: list[tuple] = [
    # ------------------------------------------------------------------ the command line itself
    ("job_unknown", "(cli)", "unknown job", "frobnicate", "unknown job 'frobnicate'"),
    ("job_missing", "(cli)", "unknown job", "", "no job given"),
    ("job_typo_scorer", "(cli)", "unknown job", "scorer trian", "unknown job 'scorer trian'"),
    # ------------------------------------------------------------------ fetch (fails before any download)
    ("fetch_only_bad", "fetch", "bad setting value", "fetch only=gpt2", "only='gpt2': choose from"),
    ("fetch_unknown_key", "fetch", "unknown key", "fetch what=all", "unknown key(s) ['what']"),
    ("fetch_stray_arg", "fetch", "command line syntax", "fetch minilm", "unexpected argument(s) ['minilm']"),
    ("fetch_no_value", "fetch", "command line syntax", "fetch --only", "--only needs a value"),
    ("fetch_config_missing", "fetch", "missing file", "fetch --config {tmp}/nope.yaml", "nope.yaml: config file not found"),
    # ------------------------------------------------------------------ scorer train: settings
    ("st_objective", "scorer train", "bad setting value", ST + " ratings={ratings} objective=ranking", "objective: 'ranking' is not one of"),
    ("st_normalize", "scorer train", "bad setting value", ST + " ratings={ratings} normalize=zscore", "normalize: 'zscore' is not one of"),
    ("st_rating_split", "scorer train", "bad setting value", ST + " ratings={ratings} rating_split=half_c", "rating_split: 'half_c'"),
    ("st_unknown_key", "scorer train", "unknown key", ST + " ratings={ratings} epochs=3", "unknown key(s) ['epochs']"),
    ("st_unknown_nested", "scorer train", "unknown key", ST + " ratings={ratings} optim.learning_rat=1e-4", "optim: unknown key(s) ['learning_rat']"),
    ("st_not_a_section", "scorer train", "wrong type", ST + " ratings={ratings} optim=fast", "optim: expected a mapping for OptimConfig"),
    ("st_key_under_scalar", "scorer train", "unknown key", ST + " ratings={ratings} backbone.name=x", "backbone"),
    ("st_lr_text", "scorer train", "wrong type", ST + " ratings={ratings} optim.learning_rate=fast", "optim: learning_rate: expected a number, got 'fast'"),
    ("st_batch_float", "scorer train", "wrong type", ST + " ratings={ratings} optim.per_device_train_batch_size=2.5", "batch_size: expected an integer, got 2.5"),
    ("st_seed_bool", "scorer train", "wrong type", ST + " ratings={ratings} seed=true", "seed: expected a number, got 'true'"),
    ("st_max_length_null", "scorer train", "wrong type", ST + " ratings={ratings} max_length=null", "max_length: expected a number, got 'null'"),
    ("st_epochs_nan", "scorer train", "nan/inf", ST + " ratings={ratings} optim.num_train_epochs=nan", "epochs=nan is out of range"),
    ("st_lr_inf", "scorer train", "nan/inf", ST + " ratings={ratings} optim.learning_rate=inf", "learning_rate=inf is out of range"),
    ("st_val_nan", "scorer train", "nan/inf", ST + " ratings={ratings} val_fraction=nan", "val_fraction=nan is out of range"),
    ("st_epochs_0", "scorer train", "out-of-range number", ST + " ratings={ratings} optim.num_train_epochs=0", "num_train_epochs=0.0 is out of range"),
    ("st_batch_0", "scorer train", "out-of-range number", ST + " ratings={ratings} optim.per_device_train_batch_size=0", "per_device_train_batch_size=0 is out of range"),
    ("st_lr_neg", "scorer train", "out-of-range number", ST + " ratings={ratings} optim.learning_rate=-1e-4", "learning_rate=-0.0001 is out of range"),
    ("st_val_1", "scorer train", "out-of-range number", ST + " ratings={ratings} val_fraction=1", "val_fraction=1.0 is out of range"),
    ("st_val_0_one_row", "scorer train", "empty data", ST + " ratings={tmp}/r.jsonl val_fraction=0", "leave 1 to train on", (("r.jsonl", jl(GOOD_RATINGS[0])),)),
    ("st_rater_no_col", "scorer train", "conflicting options", ST + " ratings={ratings} normalize=rater", "normalize=rater needs the rater id of every rating"),
    ("st_weight_decay_neg", "scorer train", "out-of-range number", ST + " ratings={ratings} optim.weight_decay=-0.1", "weight_decay=-0.1 is out of range"),
    ("st_warmup_one", "scorer train", "out-of-range number", ST + " ratings={ratings} optim.warmup_ratio=1", "warmup_ratio=1.0 is out of range"),
    ("st_max_length_1", "scorer train", "out-of-range number", ST + " ratings={ratings} max_length=1", "max_length=1 is out of range"),
    ("st_max_items_neg", "scorer train", "out-of-range number", ST + " ratings={ratings} max_train_samples=-5", "max_train_samples=-5 is out of range"),
    ("st_range_inverted", "scorer train", "conflicting options", ST + " ratings={ratings} columns.score_min=4 columns.score_max=-4", "score_min=4.0 is not below score_max=-4.0"),
    ("st_vader_domain", "scorer train", "bad setting value", ST + " ratings=vader domains=[mars]", "unknown VADER domain 'mars'"),
    ("st_backbone_missing", "scorer train", "missing file", ST + " ratings={ratings} backbone={tmp}/no_encoder", "no_encoder: model folder not found"),
    ("st_backbone_hf_id_offline", "scorer train", "missing file", ST + " ratings={ratings} backbone=no-such-org/no-such-encoder", "no-such-org/no-such-encoder: cannot load the scorer backbone"),
    ("st_backbone_empty_dir", "scorer train", "damaged file", ST + " ratings={ratings} backbone={tmp}/empty", "empty/config.json: model folder's config missing", (("empty/", ""),)),
    ("st_out_is_a_file", "scorer train", "file instead of folder", ST + " ratings={ratings} output_dir={outfile}", "out.jsonl: is a file; output_dir= takes a folder"),
    ("st_config_folder", "scorer train", "folder instead of file", "scorer train --config {tmp}", "is a folder; --config takes a YAML file"),
    ("st_config_bad_yaml", "scorer train", "damaged file", "scorer train --config {tmp}/c.yaml", "c.yaml: not valid YAML", (("c.yaml", "ratings: [a, b\noptim: {lr: 1\n"),)),
    ("st_config_list", "scorer train", "wrong type", "scorer train --config {tmp}/c.yaml", "c.yaml: expected a mapping of keys to values", (("c.yaml", "- ratings\n- vader\n"),)),
    ("st_config_unknown", "scorer train", "unknown key", "scorer train --config {tmp}/c.yaml", "c.yaml: unknown key(s) ['ratingz']", (("c.yaml", "ratingz: x.jsonl\n"),)),
    ("st_config_wrong_type", "scorer train", "wrong type", "scorer train --config {tmp}/c.yaml", "c.yaml: optim: num_train_epochs: expected a number", (("c.yaml", "optim:\n  num_train_epochs: lots\n"),)),
    # ------------------------------------------------------------------ scorer train: data
    ("st_ratings_missing", "scorer train", "missing file", ST + " ratings={tmp}/nope.jsonl", "nope.jsonl: file not found"),
    ("st_ratings_folder", "scorer train", "folder instead of file", ST + " ratings={tmp}/d", "d: cannot read it as a dataset directory", (("d/", ""),)),
    ("st_ratings_empty", "scorer train", "empty data", ST + " ratings={tmp}/e.jsonl", "e.jsonl: no rows", (("e.jsonl", ""),)),
    ("st_ratings_blank_lines", "scorer train", "empty data", ST + " ratings={tmp}/e.jsonl", "e.jsonl: no rows", (("e.jsonl", "\n\n  \n"),)),
    ("st_ratings_csv_header_only", "scorer train", "empty data", ST + " ratings={tmp}/e.csv", "e.csv: no rows", (("e.csv", "text,score\n"),)),
    ("st_ratings_bad_json_line", "scorer train", "damaged file", ST + " ratings={tmp}/r.jsonl", "r.jsonl, row 3: not valid JSON", (("r.jsonl", jl(*GOOD_RATINGS[:2]) + '{"text": "cut', ),)),
    ("st_ratings_array_line", "scorer train", "bad rows", ST + " ratings={tmp}/r.jsonl", "r.jsonl, row 2: each line must be a JSON object", (("r.jsonl", jl(GOOD_RATINGS[0]) + "[1, 2]\n"),)),
    ("st_ratings_latin1", "scorer train", "damaged file", ST + " ratings={tmp}/r.jsonl", "r.jsonl, row 2: not UTF-8 text", (("r.jsonl", jl(GOOD_RATINGS[0]).encode() + '{"text": "caf\xe9", "score": 1}\n'.encode("latin-1")),)),
    ("st_ratings_csv_latin1", "scorer train", "damaged file", ST + " ratings={tmp}/r.csv", "r.csv: cannot read it as .csv", (("r.csv", "text,score\ncaf\xe9,1\n".encode("latin-1")),)),
    ("st_ratings_txt", "scorer train", "bad setting value", ST + " ratings={tmp}/r.txt", "r.txt: unsupported file type '.txt'", (("r.txt", "great,3\n"),)),
    ("st_ratings_parquet_garbage", "scorer train", "damaged file", ST + " ratings={tmp}/r.parquet", "r.parquet: cannot read it as .parquet", (("r.parquet", b"PAR1 not really"),)),
    ("st_ratings_json_scalar", "scorer train", "wrong type", ST + " ratings={tmp}/r.json", "r.json: expected a JSON list of records, got int", (("r.json", "42"),)),
    ("st_ratings_json_cut", "scorer train", "damaged file", ST + " ratings={tmp}/r.json", "r.json: cannot read it as .json", (("r.json", '[{"text": "a", "score": 1}, {"te'),)),
    ("st_no_score_col", "scorer train", "wrong columns", ST + " ratings={tmp}/r.jsonl", "column 'score': missing column", (("r.jsonl", jl({"text": "a", "rating": 1}, {"text": "b", "rating": 2})),)),
    ("st_no_text_col", "scorer train", "wrong columns", ST + " ratings={tmp}/r.jsonl", "column 'text': missing column", (("r.jsonl", jl({"review": "a", "score": 1}, {"review": "b", "score": 2})),)),
    ("st_text_col_named_wrong", "scorer train", "wrong columns", ST + " ratings={ratings} columns.text_col=review", "column 'review': missing column"),
    ("st_rater_col_absent", "scorer train", "wrong columns", ST + " ratings={ratings} columns.rater_col=user", "column 'user': missing column"),
    ("st_item_col_absent", "scorer train", "wrong columns", ST + " ratings={ratings} columns.item_col=id", "column 'id': missing column"),
    ("st_completion_col_absent", "scorer train", "wrong columns", ST + " ratings={ratings} columns.prompt_col=prompt columns.completion_col=completion", "missing column"),
    *[
        (f"st_{name}", "scorer train", kind, ST + " ratings={tmp}/r.jsonl", says, (("r.jsonl", _ratings_with(3, score=value)),))
        for name, (kind, value, says) in BAD_SCORES.items()
    ],
    ("st_score_nan", "scorer train", "nan/inf", ST + " ratings={tmp}/r.jsonl", "row 3, column 'score': expected a finite number, got nan", (("r.jsonl", _ratings_with(3).replace('"score": 0', '"score": NaN', 1)),)),
    ("st_score_inf", "scorer train", "nan/inf", ST + " ratings={tmp}/r.jsonl", "column 'score': expected a finite number, got inf", (("r.jsonl", _ratings_with(3).replace('"score": 0', '"score": Infinity', 1)),)),
    ("st_score_csv_nan", "scorer train", "nan/inf", ST + " ratings={tmp}/r.csv", "r.csv, row 2, column 'score': expected a finite number", (("r.csv", "text,score\ngood,3\nbad,nan\nok,0\n"),)),
    ("st_text_null", "scorer train", "bad rows", ST + " ratings={tmp}/r.jsonl", "row 5, column 'text': missing text", (("r.jsonl", _ratings_with(5, text=None)),)),
    ("st_text_empty", "scorer train", "bad rows", ST + " ratings={tmp}/r.jsonl", "row 5, column 'text': empty text", (("r.jsonl", _ratings_with(5, text="   ")),)),
    ("st_text_number", "scorer train", "wrong type", ST + " ratings={tmp}/r.jsonl", "row 5, column 'text': expected text, got int 7", (("r.jsonl", _ratings_with(5, text=7)),)),
    ("st_text_object", "scorer train", "wrong type", ST + " ratings={tmp}/r.jsonl", "row 5, column 'text': expected text, got dict", (("r.jsonl", _ratings_with(5, text={"a": 1})),)),
    ("st_item_id_two_texts", "scorer train", "bad rows", ST + " ratings={tmp}/r.jsonl columns.item_col=id", "row 2, column 'id': item id 'x' is on two different texts", (("r.jsonl", jl({"id": "x", "text": "a", "score": 1}, {"id": "x", "text": "b", "score": 2})),)),
    ("st_rater_missing_id", "scorer train", "bad rows", ST + " ratings={tmp}/r.jsonl normalize=rater columns.rater_col=rater", "row 4, column 'rater': missing rater id", (("r.jsonl", jl(*[{**r, "rater": None if i == 3 else "ann"} for i, r in enumerate(GOOD_RATINGS)])),)),
    ("st_one_row", "scorer train", "empty data", ST + " ratings={tmp}/r.jsonl", "r.jsonl has 1 items", (("r.jsonl", jl(GOOD_RATINGS[0])),)),
    ("st_bt_pointwise_file", "scorer train", "wrong columns", ST + " ratings={ratings} objective=bradley_terry", "column 'prompt': missing column"),
    ("st_bt_same_texts", "scorer train", "bad rows", ST + " ratings={tmp}/p.jsonl objective=bradley_terry", "p.jsonl, row 2, column 'rejected': chosen and rejected are identical", (("p.jsonl", jl({"prompt": "", "chosen": "a", "rejected": "b"}, {"prompt": "", "chosen": "c", "rejected": "c"})),)),
    ("st_bt_chosen_null", "scorer train", "bad rows", ST + " ratings={tmp}/p.jsonl objective=bradley_terry", "p.jsonl, row 1, column 'chosen': missing text", (("p.jsonl", jl({"prompt": "", "chosen": None, "rejected": "b"})),)),
    ("st_bt_too_few_pairs", "scorer train", "empty data", ST + " ratings={tmp}/p.jsonl objective=bradley_terry", "p.jsonl has 2 pairs", (("p.jsonl", jl({"prompt": "", "chosen": "a", "rejected": "b"}, {"prompt": "", "chosen": "c", "rejected": "d"})),)),
    # ------------------------------------------------------------------ scorer eval
    ("se_scorer_missing", "scorer eval", "missing file", SE.replace("{scorer}", "{tmp}/none") + " ratings={ratings}", "none: not a condtune scorer"),
    ("se_scorer_is_file", "scorer eval", "file instead of folder", SE.replace("{scorer}", "{ratings}") + " ratings={ratings}", "ratings.jsonl: not a condtune scorer"),
    ("se_scorer_no_head", "scorer eval", "damaged file", SE.replace("{scorer}", "{tmp}/bad_scorer") + " ratings={ratings}", "scorer head missing", (), "scorer_no_head"),
    ("se_scorer_card_cut", "scorer eval", "damaged file", SE.replace("{scorer}", "{tmp}/bad_scorer") + " ratings={ratings}", "scorer card is not valid JSON", (), "scorer_card_cut"),
    ("se_scorer_card_nan_sd", "scorer eval", "nan/inf", SE.replace("{scorer}", "{tmp}/bad_scorer") + " ratings={ratings}", "target_sd must be a finite number", (), "scorer_card_nan"),
    ("se_ratings_missing", "scorer eval", "missing file", SE + " ratings={tmp}/nope.csv", "nope.csv: file not found"),
    ("se_ratings_empty", "scorer eval", "empty data", SE + " ratings={tmp}/e.jsonl", "e.jsonl: no rows", (("e.jsonl", ""),)),
    ("se_one_item", "scorer eval", "empty data", SE + " ratings={tmp}/r.jsonl", "r.jsonl: 1 rated items; evaluating a scorer needs at least 2", (("r.jsonl", jl(GOOD_RATINGS[0], {**GOOD_RATINGS[0], "score": 1})),)),
    ("se_objective_bad", "scorer eval", "bad setting value", SE + " ratings={ratings} objective=pairs", "objective: 'pairs' is not one of"),
    ("se_bt_on_pointwise", "scorer eval", "wrong columns", SE + " ratings={ratings} objective=bradley_terry", "column 'prompt': missing column"),
    ("se_score_out_of_range", "scorer eval", "out-of-range number", SE + " ratings={tmp}/r.jsonl columns.score_max=1", "row 5, column 'score': score 2 is outside", (("r.jsonl", jl(*GOOD_RATINGS)),)),
    ("se_out_is_folder", "scorer eval", "folder instead of file", SE + " ratings={ratings} output_path={outdir}", "out: is a folder; output_path= takes a JSON file"),
    ("se_domains_type", "scorer eval", "bad setting value", SE + " ratings=vader domains=[moon]", "unknown VADER domain 'moon'"),
    # ------------------------------------------------------------------ relabel
    ("rl_data_missing", "relabel", "missing file", RL + " data={tmp}/nope.jsonl", "nope.jsonl: file not found"),
    ("rl_data_folder", "relabel", "folder instead of file", RL + " data={tmp}/d", "d: cannot read it as a dataset directory", (("d/", ""),)),
    ("rl_data_empty", "relabel", "empty data", RL + " data={tmp}/e.jsonl", "e.jsonl: no rows", (("e.jsonl", ""),)),
    ("rl_data_cut", "relabel", "damaged file", RL + " data={tmp}/c.jsonl", "c.jsonl, row 2: not valid JSON", (("c.jsonl", '{"prompt": "R:", "completion": "a"}\n{"prompt": "R:", "compl'),)),
    ("rl_no_completion_col", "relabel", "wrong columns", RL + " data={tmp}/c.jsonl", "column 'completion': missing column", (("c.jsonl", jl({"prompt": "R:", "text": "a"}, {"prompt": "R:", "text": "b"})),)),
    ("rl_no_prompt_col", "relabel", "wrong columns", RL + " data={tmp}/c.jsonl", "column 'prompt': missing column", (("c.jsonl", jl({"completion": "a"}, {"completion": "b"})),)),
    ("rl_completion_col_named_wrong", "relabel", "wrong columns", RL + " data={corpus} completion_col=body", "column 'body': missing column"),
    ("rl_completion_null", "relabel", "bad rows", RL + " data={tmp}/c.jsonl", "row 2, column 'completion': missing text", (("c.jsonl", jl({"prompt": "R:", "completion": "a"}, {"prompt": "R:", "completion": None})),)),
    ("rl_completion_empty", "relabel", "bad rows", RL + " data={tmp}/c.jsonl", "row 1, column 'completion': empty text", (("c.jsonl", jl({"prompt": "R:", "completion": ""}, {"prompt": "R:", "completion": "b"})),)),
    ("rl_completion_number", "relabel", "wrong type", RL + " data={tmp}/c.jsonl", "row 2, column 'completion': expected text, got float", (("c.jsonl", jl({"prompt": "R:", "completion": "a"}, {"prompt": "R:", "completion": 1.5})),)),
    ("rl_prompt_number", "relabel", "wrong type", RL + " data={tmp}/c.jsonl", "row 1, column 'prompt': expected text, got int", (("c.jsonl", jl({"prompt": 3, "completion": "a"}, {"prompt": "R:", "completion": "b"})),)),
    ("rl_k_text", "relabel", "wrong type", RL + " data={corpus} num_bins=five", "num_bins: expected a number, got 'five'"),
    ("rl_k_one", "relabel", "out-of-range number", RL + " data={corpus} num_bins=1", "num_bins=1: score bins need num_bins >= 2"),
    ("rl_k_too_many", "relabel", "out-of-range number", RL + " data={tmp}/c.jsonl num_bins=3", "c.jsonl has 2 distinct texts", (("c.jsonl", jl({"prompt": "R:", "completion": "a"}, {"prompt": "R:", "completion": "b"}, {"prompt": "R:", "completion": "a"})),)),
    ("rl_one_row", "relabel", "empty data", RL + " data={tmp}/c.jsonl", "c.jsonl has 1 distinct texts (1 rows); score bins need at least 2", (("c.jsonl", jl({"prompt": "R:", "completion": "a"})),)),
    ("rl_binning_bad", "relabel", "bad setting value", RL + " data={corpus} binning=median", "binning: 'median' is not one of"),
    ("rl_tag_style_bad", "relabel", "bad setting value", RL + " data={corpus} tag_style=emoji", "tag_style: 'emoji' is not one of"),
    ("rl_tag_column_absent", "relabel", "wrong columns", RL + " data={corpus} tag_columns=[genre]", "column 'genre': tag column missing"),
    ("rl_tag_value_null", "relabel", "bad rows", RL + " data={tmp}/c.jsonl tag_columns=[domain]", "row 2, column 'domain': tag value is missing", (("c.jsonl", jl({"prompt": "R:", "completion": "a", "domain": "x"}, {"prompt": "R:", "completion": "b", "domain": None})),)),
    ("rl_edges_from_missing", "relabel", "missing file", RL + " data={corpus} edges_from={tmp}/old.jsonl", "old.jsonl.card.json: no tag card here"),
    ("rl_edges_from_cut", "relabel", "damaged file", RL + " data={corpus} edges_from={tmp}/old.card.json", "old.card.json: tag card is not valid JSON", (("old.card.json", '{"binning": {"edges": [0.1'),)),
    ("rl_edges_from_unsorted", "relabel", "damaged file", RL + " data={corpus} edges_from={tmp}/old.card.json", "edges must be ascending", (("old.card.json", json.dumps({"binning": {"edges": [1.0, 0.0], "centers": [0, 1, 2]}})),)),
    ("rl_edges_from_nan", "relabel", "nan/inf", RL + " data={corpus} edges_from={tmp}/old.card.json", "edges must be ascending finite numbers", (("old.card.json", '{"binning": {"edges": [NaN], "centers": [0, 1]}}'),)),
    ("rl_scorer_missing", "relabel", "missing file", RL.replace("{scorer}", "{tmp}/no_scorer") + " data={corpus}", "no_scorer: not a condtune scorer"),
    ("rl_scorer_weights_cut", "relabel", "damaged file", RL.replace("{scorer}", "{tmp}/bad_scorer") + " data={corpus}", "truncated or damaged safetensors", (), "scorer_weights_cut"),
    ("rl_scorer_no_tokenizer", "relabel", "damaged file", RL.replace("{scorer}", "{tmp}/bad_scorer") + " data={corpus}", "has no tokenizer files", (), "scorer_no_tokenizer"),
    ("rl_out_suffix", "relabel", "bad setting value", RL + " data={corpus} output_path={tmp}/tagged.txt", "tagged.txt: unsupported output type '.txt'"),
    ("rl_out_is_folder", "relabel", "folder instead of file", RL + " data={corpus} output_path={outdir}", "out: is a folder; output_path= takes a file"),
    ("rl_domains_unknown", "relabel", "bad setting value", RL + " data=vader domains=[poems]", "unknown VADER domain 'poems'"),
    ("rl_config_non_utf8", "relabel", "damaged file", "relabel --config {tmp}/c.yaml", "c.yaml: not UTF-8 text", (("c.yaml", b"k: 3\nscorer: caf\xe9\n"),)),
    ("rl_config_k_null", "relabel", "wrong type", "relabel --config {tmp}/c.yaml", "c.yaml: num_bins: null is not allowed", (("c.yaml", "num_bins: null\n"),)),
    # ------------------------------------------------------------------ train
    ("tr_data_missing", "train", "missing file", TR + " data={tmp}/nope.jsonl", "nope.jsonl.card.json: no tag card here"),
    ("tr_data_without_card", "train", "missing file", TR + " data={corpus}", "corpus.jsonl.card.json: no tag card here"),
    ("tr_card_cut", "train", "damaged file", TR + " data={tagged}", "tagged.jsonl.card.json: tag card is not valid JSON", (), "tagged_card_cut"),
    ("tr_card_no_binning", "train", "damaged file", TR + " data={tagged}", "missing key 'binning'", (), "tagged_card_no_binning"),
    ("tr_card_other_rows", "train", "damaged file", TR + " data={tagged}", "tagged.jsonl: has 6 rows but its card tagged.jsonl.card.json describes 8", (), "tagged_rows_dropped"),
    ("tr_card_other_text", "train", "damaged file", TR + " data={tagged}", "its rows differ from those its card", (), "tagged_row_edited"),
    ("tr_data_cut", "train", "damaged file", TR + " data={tagged}", "tagged.jsonl, row 8: not valid JSON", (), "tagged_cut"),
    ("tr_no_tagged_prompt", "train", "wrong columns", TR + " data={tagged}", "column 'tagged_prompt': missing column", (), "tagged_no_tagged_prompt"),
    ("tr_completion_null", "train", "bad rows", TR + " data={tagged}", "row 3, column 'completion': missing text", (), "tagged_completion_null"),
    ("tr_max_steps_0", "train", "out-of-range number", TR + " data={tagged} sft.max_steps=0", "max_steps=0 is out of range"),
    ("tr_max_steps_neg", "train", "out-of-range number", TR + " data={tagged} sft.max_steps=-1", "max_steps=-1 is out of range"),
    ("tr_batch_0", "train", "out-of-range number", TR + " data={tagged} sft.per_device_train_batch_size=0", "per_device_train_batch_size=0 is out of range"),
    ("tr_lr_0", "train", "out-of-range number", TR + " data={tagged} sft.learning_rate=0", "learning_rate=0.0 is out of range"),
    ("tr_lr_nan", "train", "nan/inf", TR + " data={tagged} sft.learning_rate=nan", "learning_rate=nan is out of range"),
    ("tr_lr_inf", "train", "nan/inf", TR + " data={tagged} sft.learning_rate=inf", "learning_rate=inf is out of range"),
    ("tr_max_length_1", "train", "out-of-range number", TR + " data={tagged} sft.max_length=1", "max_length=1 is out of range"),
    ("tr_dropout_1", "train", "out-of-range number", TR + " data={tagged} sft.condition_dropout=1", "condition_dropout=1.0 is out of range"),
    ("tr_kl_neg", "train", "out-of-range number", TR + " data={tagged} sft.kl_coef=-0.1", "kl_coef=-0.1 is out of range"),
    ("tr_kl_nan", "train", "nan/inf", TR + " data={tagged} sft.kl_coef=nan", "kl_coef=nan is out of range"),
    ("tr_warmup_neg", "train", "out-of-range number", TR + " data={tagged} sft.warmup_ratio=-0.5", "warmup_ratio=-0.5 is out of range"),
    ("tr_lora_neg", "train", "out-of-range number", TR + " data={tagged} sft.lora_r=-4", "lora_r=-4 is out of range"),
    ("tr_save_steps_0", "train", "out-of-range number", TR + " data={tagged} sft.save_steps=0", "save_steps=0 is out of range"),
    ("tr_schedule_bad", "train", "bad setting value", TR + " data={tagged} sft.lr_scheduler_type=cosine", "lr_scheduler_type: 'cosine' is not one of"),
    ("tr_max_examples_neg", "train", "out-of-range number", TR + " data={tagged} max_train_samples=-1", "max_train_samples=-1"),
    ("tr_overwrite_text", "train", "wrong type", TR + " data={tagged} overwrite=maybe", "overwrite: expected true/false, got 'maybe'"),
    ("tr_online_neg", "train", "out-of-range number", TR + " data={tagged} online.rounds=-1", "rounds=-1: online settings out of range"),
    ("tr_online_share", "train", "out-of-range number", TR + " data={tagged} online.top_share=1.5", "top_share=1.5: online settings out of range"),
    ("tr_online_no_scorer", "train", "conflicting options", TR + " data={tagged} online.rounds=1", "online.rounds > 0 needs scorer="),
    ("tr_model_missing", "train", "missing file", TR.replace("{lm}", "{tmp}/no_model") + " data={tagged}", "no_model: model folder not found"),
    ("tr_model_hf_id_offline", "train", "missing file", TR.replace("{lm}", "no-such-org/no-such-model") + " data={tagged}", "no-such-org/no-such-model: cannot load the model"),
    ("tr_model_no_weights", "train", "damaged file", TR.replace("{lm}", "{tmp}/bad_policy") + " data={tagged}", "model folder has no weights", (), "policy_no_weights"),
    ("tr_out_is_file", "train", "file instead of folder", TR.replace("{out}", "{outfile}") + " data={tagged}", "out.jsonl: is a file; output_dir= takes a folder"),
    ("tr_other_run", "train", "conflicting options", TR + " data={tagged}", "holds another training run", (), "out_other_train_run"),
    # ------------------------------------------------------------------ generate
    ("ge_model_missing", "generate", "missing file", GE.replace("{policy}", "{tmp}/none"), "none: not a condtune policy"),
    ("ge_model_is_file", "generate", "file instead of folder", GE.replace("{policy}", "{tagged}"), "tagged.jsonl: not a condtune policy"),
    ("ge_model_base_lm", "generate", "wrong kind of folder", GE.replace("{policy}", "{lm}"), "not a condtune policy (no condtune_policy.json)"),
    ("ge_card_cut", "generate", "damaged file", GE.replace("{policy}", "{tmp}/bad_policy"), "policy card is not valid JSON", (), "policy_card_cut"),
    ("ge_weights_cut", "generate", "damaged file", GE.replace("{policy}", "{tmp}/bad_policy"), "truncated or damaged safetensors", (), "policy_weights_cut"),
    ("ge_config_cut", "generate", "damaged file", GE.replace("{policy}", "{tmp}/bad_policy"), "config is not valid JSON", (), "policy_config_cut"),
    ("ge_score_nan", "generate", "nan/inf", GE + " score=nan", "score=nan: expected a finite number"),
    ("ge_score_inf", "generate", "nan/inf", GE + " score=inf", "score=inf: expected a finite number"),
    ("ge_score_minus_inf", "generate", "nan/inf", GE + " --score=-inf", "score=-inf: expected a finite number"),
    ("ge_score_text", "generate", "wrong type", GE + " score=high", "score: expected a number, got 'high'"),
    ("ge_score_no_value", "generate", "command line syntax", GE + " --score", "--score needs a value"),
    ("ge_bin_0", "generate", "out-of-range number", GE + " bin=0", "bin=0: "),
    ("ge_bin_99", "generate", "out-of-range number", GE + " bin=99", "bin=99: "),
    ("ge_bin_neg", "generate", "out-of-range number", GE + " --bin=-1", "bin=-1: "),
    ("ge_bin_float", "generate", "wrong type", GE + " bin=1.5", "bin: expected an integer, got 1.5"),
    ("ge_score_and_bin", "generate", "conflicting options", GE + " score=1 bin=2", "give --score or --bin, not both"),
    ("ge_n_0", "generate", "out-of-range number", GE.replace("num_return_sequences=1", "num_return_sequences=0"), "num_return_sequences=0: ask for at least 1"),
    ("ge_n_neg", "generate", "out-of-range number", GE.replace("num_return_sequences=1", "-n -3"), "num_return_sequences=-3: ask for at least 1"),
    ("ge_n_text", "generate", "wrong type", GE.replace("num_return_sequences=1", "-n many"), "num_return_sequences: expected a number, got 'many'"),
    ("ge_best_of_neg", "generate", "out-of-range number", GE + " best_of=-2", "best_of=-2"),
    ("ge_best_of_no_scorer", "generate", "conflicting options", GE + " score=1 best_of=2", "--best_of needs --scorer"),
    ("ge_scorer_missing", "generate", "missing file", GE + " score=1 scorer={tmp}/none", "none: not a condtune scorer"),
    ("ge_tag_unknown", "generate", "bad setting value", GE + " score=1 --tags genre=poem", "tags: unknown tag 'genre'"),
    ("ge_tag_value_unknown", "generate", "bad setting value", GE + " score=1 --tags domain=poem", "tags: unknown value 'poem' for tag 'domain'"),
    ("ge_guidance_nan", "generate", "nan/inf", GE + " score=1 guidance_scale=nan", "guidance_scale=nan"),
    ("ge_guidance_inf", "generate", "nan/inf", GE + " score=1 guidance_scale=inf", "guidance_scale=inf"),
    ("ge_anchored_no_base", "generate", "conflicting options", GE.replace("{policy}", "{tmp}/bad_policy") + " score=1 --anchored", "names no base model", (), "policy_no_base"),
    ("ge_temperature_neg", "generate", "out-of-range number", GE + " sampling.temperature=-1", "temperature=-1.0 is out of range"),
    ("ge_temperature_nan", "generate", "nan/inf", GE + " sampling.temperature=nan", "temperature=nan is out of range"),
    ("ge_top_p_0", "generate", "out-of-range number", GE + " sampling.top_p=0", "top_p=0.0 is out of range"),
    ("ge_top_p_big", "generate", "out-of-range number", GE + " sampling.top_p=1.5", "top_p=1.5 is out of range"),
    ("ge_max_new_0", "generate", "out-of-range number", GE + " sampling.max_new_tokens=0", "max_new_tokens=0 is out of range"),
    ("ge_batch_0", "generate", "out-of-range number", GE + " sampling.batch_size=0", "batch_size=0 is out of range"),
    ("ge_rep_penalty_0", "generate", "out-of-range number", GE + " sampling.repetition_penalty=0", "repetition_penalty=0.0 is out of range"),
    ("ge_empty_prompt", "generate", "bad setting value", GE.replace("prompt=Review:", "--prompt ''"), "prompt: an empty prompt"),
    ("ge_json_text", "generate", "wrong type", GE + " json=perhaps", "json: expected true/false"),
    ("ge_stray_arg", "generate", "command line syntax", GE + " Review:", "unexpected argument(s) ['Review:']"),
    ("ge_score_99", "generate", "clamped (warning)", GE + " score=99", "score 99.00 is beyond the policy's targets", (), None, "warn"),
    ("ge_score_minus_99", "generate", "clamped (warning)", GE + " --score=-99", "it asks for the bottom bin", (), None, "warn"),
    # ------------------------------------------------------------------ sample
    ("sa_prompts_missing", "sample", "missing file", SA.replace("{prompts}", "{tmp}/nope.txt"), "nope.txt: prompts file not found"),
    ("sa_prompts_folder", "sample", "folder instead of file", SA.replace("{prompts}", "{tmp}/d"), "d: is a folder, not a prompts file", (("d/", ""),)),
    ("sa_prompts_empty", "sample", "empty data", SA.replace("{prompts}", "{tmp}/p.txt"), "p.txt: no prompts found", (("p.txt", "\n   \n"),)),
    ("sa_prompts_latin1", "sample", "damaged file", SA.replace("{prompts}", "{tmp}/p.txt"), "p.txt, row 2: not UTF-8 text", (("p.txt", "Review:\nCaf\xe9 review:\n".encode("latin-1")),)),
    ("sa_prompts_jsonl_number", "sample", "wrong type", SA.replace("{prompts}", "{tmp}/p.jsonl"), "p.jsonl, row 2, column 'prompt'", (("p.jsonl", jl({"prompt": "a"}, {"prompt": 5})),)),
    ("sa_prompts_json_dict", "sample", "wrong type", SA.replace("{prompts}", "{tmp}/p.json"), "p.json: expected a JSON list of objects", (("p.json", '{"prompt": "a"}'),)),
    ("sa_prompts_json_cut", "sample", "damaged file", SA.replace("{prompts}", "{tmp}/p.json"), "p.json: not valid JSON", (("p.json", '[{"prompt": "a"'),)),
    ("sa_n_0", "sample", "out-of-range number", SA.replace("num_return_sequences=1", "num_return_sequences=0"), "num_return_sequences=0"),
    ("sa_scale_inverted", "sample", "conflicting options", SA + " scale_min=4 scale_max=-4", "scale_min=4 scale_max=-4"),
    ("sa_max_prompts_neg", "sample", "out-of-range number", SA + " max_prompts=-1", "max_prompts=-1"),
    ("sa_temperature_neg", "sample", "out-of-range number", SA + " sampling.temperature=-0.5", "temperature=-0.5 is out of range"),
    ("sa_append_other_scale", "sample", "conflicting options", SA.replace("{outfile}", "{task}") + " --append scale_min=1 scale_max=5", "appending needs the same scale"),
    ("sa_append_damaged", "sample", "damaged file", SA.replace("{outfile}", "{tmp}/t.jsonl") + " --append", "t.jsonl, row 1, column 'completion': missing field", (("t.jsonl", jl({"item_id": "a", "prompt": "p"})),)),
    ("sa_out_is_folder", "sample", "folder instead of file", SA.replace("{outfile}", "{outdir}"), "out: is a folder; output_path= takes a task file"),
    ("sa_model_missing", "sample", "missing file", SA.replace("{lm}", "{tmp}/no_model"), "no_model: model folder not found"),
    ("sa_model_not_a_model", "sample", "damaged file", SA.replace("{lm}", "{tmp}/d"), "d/config.json: model folder's config missing", (("d/", ""),)),
    # ------------------------------------------------------------------ rate
    ("ra_task_missing", "rate", "missing file", RA + " {tmp}/nope.jsonl", "nope.jsonl: task file not found"),
    ("ra_task_folder", "rate", "folder instead of file", RA + " {tmp}/d", "d: is a folder, not a task file", (("d/", ""),)),
    ("ra_no_task", "rate", "missing file", RA, "no task: run `condtune rate TASKFILE`"),
    ("ra_task_empty", "rate", "empty data", RA + " {tmp}/t.jsonl", "t.jsonl: no items", (("t.jsonl", "\n"),)),
    ("ra_task_bad_json", "rate", "damaged file", RA + " {tmp}/t.jsonl", "t.jsonl, row 1: not valid JSON", (("t.jsonl", '{"item_id": "a", '),)),
    ("ra_task_missing_field", "rate", "wrong columns", RA + " {tmp}/t.jsonl", "t.jsonl, row 1, column 'completion': missing field", (("t.jsonl", jl({"item_id": "a", "prompt": "p", "model": "m", "sample_index": 0})),)),
    ("ra_task_index_neg", "rate", "bad rows", RA + " {tmp}/t.jsonl", "column 'sample_index': expected a non-negative integer", (("t.jsonl", jl({"item_id": "a", "prompt": "p", "completion": "c", "model": "m", "sample_index": -1})),)),
    ("ra_task_dup_id", "rate", "bad rows", RA + " {tmp}/t.jsonl", "row 2, column 'item_id': duplicate item_id 'a'", (("t.jsonl", jl(*[{"item_id": "a", "prompt": "p", "completion": c, "model": "m", "sample_index": i} for i, c in enumerate("xy")])),)),
    ("ra_task_completion_number", "rate", "wrong type", RA + " {tmp}/t.jsonl", "column 'completion': expected a string, got int", (("t.jsonl", jl({"item_id": "a", "prompt": "p", "completion": 4, "model": "m", "sample_index": 0})),)),
    ("ra_task_latin1", "rate", "damaged file", RA + " {tmp}/t.jsonl", "t.jsonl, row 1: not UTF-8 text (byte 0xe9", (("t.jsonl", json.dumps({"item_id": "a", "prompt": "p", "completion": "caf\xe9", "model": "m", "sample_index": 0}, ensure_ascii=False).encode("latin-1")),)),
    ("ra_scale_change_with_scores", "rate", "conflicting options", RA + " {task} scale_min=1 scale_max=5", "holds 1 scores on the scale -4..4; refusing to switch to 1..5", (), "task_db_with_scores"),
    ("ra_card_cut", "rate", "damaged file", RA + " {task}", "tasks.card.json: not valid JSON", (), "task_card_cut"),
    ("ra_card_scale_text", "rate", "wrong type", RA + " {task}", "tasks.card.json, column 'scale'", (), "task_card_scale_text"),
    ("ra_scale_inverted", "rate", "conflicting options", RA + " {task} scale_min=3 scale_max=1", "score scale must have min < max, got 3..1"),
    ("ra_scale_equal", "rate", "conflicting options", RA + " {task} scale_min=2 scale_max=2", "score scale must have min < max, got 2..2"),
    ("ra_ranking_bad", "rate", "bad setting value", RA + " {task} --export ranking=glicko", "ranking: 'glicko' is not one of"),
    ("ra_port_text", "rate", "wrong type", RA + " {task} port=http", "port: expected a number, got 'http'"),
    ("ra_port_neg", "rate", "out-of-range number", RA + " {task} port=-1", "port=-1: "),
    ("ra_port_huge", "rate", "out-of-range number", RA + " {task} port=70000", "port=70000: "),
    ("ra_host_bad", "rate", "bad setting value", RA + " {task} host=no.such.host.invalid", "host=no.such.host.invalid"),
    ("ra_db_missing", "rate", "missing file", RA + " db={tmp}/none.sqlite --export", "none.sqlite: no such ratings database"),
    ("ra_db_folder", "rate", "folder instead of file", RA + " db={tmp}/d --export", "d: is a folder; db= takes a ratings database file", (("d/", ""),)),
    ("ra_db_garbage", "rate", "damaged file", RA + " {task} db={tmp}/g.sqlite", "g.sqlite: not a ratings database", (("g.sqlite", b"this is not sqlite at all" * 50),)),
    ("ra_unknown_text_key", "rate", "unknown key", RA + " {task} text.questionn=Why", "text: unknown key(s) ['questionn']"),
    ("ra_export_dir_is_file", "rate", "file instead of folder", RA + " {task} --export output_dir={outfile}", "out.jsonl: is a file; output_dir= takes a folder"),
    # ------------------------------------------------------------------ dpo
    ("dp_neither", "dpo", "conflicting options", DP, "give pairs=<prompt, chosen, rejected file> or ratings="),
    ("dp_both", "dpo", "conflicting options", DP + " pairs={pairs} ratings={ratings}", "(one of them)"),
    ("dp_pairs_missing", "dpo", "missing file", DP + " pairs={tmp}/nope.jsonl", "nope.jsonl: file not found"),
    ("dp_pairs_empty", "dpo", "empty data", DP + " pairs={tmp}/p.jsonl", "p.jsonl: no rows", (("p.jsonl", ""),)),
    ("dp_pairs_no_rejected", "dpo", "wrong columns", DP + " pairs={tmp}/p.jsonl", "column 'rejected': missing column", (("p.jsonl", jl({"prompt": "R:", "chosen": "a"})),)),
    ("dp_pairs_same", "dpo", "bad rows", DP + " pairs={tmp}/p.jsonl", "row 1, column 'rejected': chosen and rejected are identical", (("p.jsonl", jl({"prompt": "R:", "chosen": "a", "rejected": "a"})),)),
    ("dp_pairs_rejected_empty", "dpo", "bad rows", DP + " pairs={tmp}/p.jsonl", "row 1, column 'rejected': empty text", (("p.jsonl", jl({"prompt": "R:", "chosen": "a", "rejected": " "})),)),
    ("dp_ratings_no_margin", "dpo", "empty data", DP + " ratings={tmp}/r.jsonl", "r.jsonl: no pairs with a rating margin >= 1.0", (("r.jsonl", jl({"text": "a", "score": 1}, {"text": "b", "score": 1})),)),
    ("dp_checkpoints_empty", "dpo", "out-of-range number", DP.replace("dpo.checkpoints=[1]", "dpo.checkpoints=[]") + " pairs={pairs}", "checkpoints=[]"),
    ("dp_checkpoints_zero", "dpo", "out-of-range number", DP.replace("dpo.checkpoints=[1]", "dpo.checkpoints=[0]") + " pairs={pairs}", "checkpoints=[0]"),
    ("dp_beta_neg", "dpo", "out-of-range number", DP + " pairs={pairs} dpo.beta=-0.1", "beta=-0.1 is out of range"),
    ("dp_lr_0", "dpo", "out-of-range number", DP + " pairs={pairs} dpo.learning_rate=0", "learning_rate=0.0 is out of range"),
    ("dp_batch_0", "dpo", "out-of-range number", DP.replace("dpo.per_device_train_batch_size=2", "dpo.per_device_train_batch_size=0") + " pairs={pairs}", "per_device_train_batch_size=0 is out of range"),
    ("dp_margin_nan", "dpo", "nan/inf", DP + " ratings={ratings} dpo.min_margin=nan", "min_margin=nan is out of range"),
    ("dp_n_pairs_0", "dpo", "out-of-range number", DP + " ratings={ratings} dpo.max_train_samples=0", "max_train_samples=0 is out of range"),
    ("dp_model_missing", "dpo", "missing file", DP.replace("{lm}", "{tmp}/no_model") + " pairs={pairs}", "no_model: model folder not found"),
    ("dp_out_is_file", "dpo", "file instead of folder", DP.replace("{out}", "{outfile}") + " pairs={pairs}", "out.jsonl: is a file; output_dir= takes a folder"),
    # ------------------------------------------------------------------ rloo
    ("ro_scorer_missing", "rloo", "missing file", RO.replace("{scorer}", "{tmp}/none"), "none: not a condtune scorer"),
    ("ro_prompts_missing", "rloo", "missing file", RO.replace("{prompts}", "{tmp}/nope.txt"), "nope.txt: prompts file not found"),
    ("ro_prompts_empty", "rloo", "empty data", RO.replace("{prompts}", "{tmp}/p.txt"), "p.txt: no prompts found", (("p.txt", ""),)),
    ("ro_checkpoints_empty", "rloo", "out-of-range number", RO.replace("rloo.checkpoints=[1]", "rloo.checkpoints=[]"), "checkpoints=[]"),
    ("ro_generations_1", "rloo", "out-of-range number", RO + " rloo.num_generations=1", "num_generations=1"),
    ("ro_batch_not_multiple", "rloo", "conflicting options", RO + " rloo.per_device_train_batch_size=6 rloo.num_generations=4", "batch_size=6 must be a multiple of num_generations=4"),
    ("ro_lr_neg", "rloo", "out-of-range number", RO + " rloo.learning_rate=-1e-5", "learning_rate=-1e-05 is out of range"),
    ("ro_beta_inf", "rloo", "nan/inf", RO + " rloo.beta=inf", "beta=inf is out of range"),
    ("ro_max_new_0", "rloo", "out-of-range number", RO + " sampling.max_new_tokens=0", "max_new_tokens=0 is out of range"),
    ("ro_model_missing", "rloo", "missing file", RO.replace("{lm}", "{tmp}/no_model"), "no_model: model folder not found"),
    # ------------------------------------------------------------------ best-of-n
    ("bn_n_0", "best-of-n", "out-of-range number", BN.replace("n=2", "n=0"), "n=0: ask for at least 1"),
    ("bn_scorer_missing", "best-of-n", "missing file", BN.replace("{scorer}", "{tmp}/none"), "none: not a condtune scorer"),
    ("bn_scorer_card_key", "best-of-n", "damaged file", BN.replace("{scorer}", "{tmp}/bad_scorer"), "missing keys ['objective']", (), "scorer_card_key"),
    ("bn_prompts_missing", "best-of-n", "missing file", BN.replace("{prompts}", "{tmp}/nope.jsonl"), "nope.jsonl: prompts file not found"),
    ("bn_prompts_bad_row", "best-of-n", "bad rows", BN.replace("{prompts}", "{tmp}/p.jsonl"), "p.jsonl, row 1: not valid JSON", (("p.jsonl", "prompt: hi\n"),)),
    ("bn_temperature_neg", "best-of-n", "out-of-range number", BN + " sampling.temperature=-1", "temperature=-1.0 is out of range"),
    ("bn_model_missing", "best-of-n", "missing file", BN.replace("{lm}", "{tmp}/no_model"), "no_model: model folder not found"),
    ("bn_out_is_file", "best-of-n", "file instead of folder", BN.replace("{out}", "{outfile}"), "out.jsonl: is a file; output_dir= takes a folder"),
    # ------------------------------------------------------------------ ppo
    ("pp_reward_unknown", "ppo", "bad setting value", PP + " reward=happiness", "reward='happiness'"),
    ("pp_temperature_0", "ppo", "out-of-range number", PP + " temperature=0", "temperature must be > 0"),
    ("pp_minibatch_not_divisor", "ppo", "conflicting options", PP + " per_device_train_batch_size=4 mini_batch_size=3", "must be a multiple of mini_batch_size"),
    ("pp_minibatch_0", "ppo", "out-of-range number", PP + " mini_batch_size=0", "mini_batch_size=0"),
    ("pp_updates_0", "ppo", "out-of-range number", PP.replace("max_steps=1", "max_steps=0"), "max_steps=0"),
    ("pp_lr_neg", "ppo", "out-of-range number", PP + " learning_rate=-1", "learning_rate=-1.0"),
    ("pp_top_p_0", "ppo", "out-of-range number", PP + " top_p=0", "top_p=0.0"),
    ("pp_epochs_0", "ppo", "out-of-range number", PP + " ppo_epochs=0", "ppo_epochs=0"),
    ("pp_kl_nan", "ppo", "nan/inf", PP + " kl_coef=nan", "kl_coef=nan"),
    ("pp_scorer_missing", "ppo", "missing file", PP + " scorer={tmp}/none", "none: not a condtune scorer"),
    ("pp_prompts_missing", "ppo", "missing file", PP.replace("{prompts}", "{tmp}/nope.txt"), "nope.txt: prompts file not found"),
    ("pp_model_missing", "ppo", "missing file", PP.replace("{lm}", "{tmp}/no_model"), "no_model: model folder not found"),
    ("pp_unknown_key", "ppo", "unknown key", PP + " learning_rat=1e-5", "unknown key(s) ['learning_rat']"),
    # ------------------------------------------------------------------ bench (refused before anything runs)
    ("be_method_unknown", "bench", "bad setting value", BE.replace("[best_of_n]", "[sft]"), "methods: unknown ['sft']"),
    ("be_sweep_method", "bench", "bad setting value", BE + " sweeps.ppo2=[kl_coef=0.1]", "sweeps: unknown method 'ppo2'"),
    ("be_sweep_key", "bench", "unknown key", BE + " sweeps.ppo=[klcoef=0.1]", "unknown key(s) ['klcoef']"),
    ("be_eval_n_0", "bench", "out-of-range number", BE + " eval_n=0", "n_eval_prompts and eval_n must be >= 1"),
    ("be_temperature_0", "bench", "out-of-range number", BE + " eval_temperatures=[0]", "eval_temperatures and sampling.temperature must be > 0"),
    ("be_seeds_text", "bench", "wrong type", BE + " seeds=[one]", "seeds[0]: expected a number, got 'one'"),
    ("be_report_empty", "bench", "empty data", BE + " report_only=true", "report: no results in"),
    # ------------------------------------------------------------------ quickstart (refused before any stage runs)
    ("qs_k_1", "quickstart", "out-of-range number", QS + " num_bins=1", "num_bins=1: score bins need num_bins >= 2"),
    ("qs_n_0", "quickstart", "out-of-range number", QS + " num_return_sequences=0", "num_return_sequences=0"),
    ("qs_domain", "quickstart", "bad setting value", QS + " domain=poetry", "domain='poetry'"),
    ("qs_scorer_missing", "quickstart", "missing file", QS + " scorer={tmp}/none", "none: not a condtune scorer"),
    ("qs_scorer_items_neg", "quickstart", "out-of-range number", QS + " scorer_max_train_samples=-1", "scorer_max_train_samples=-1"),
    ("qs_prompts_empty", "quickstart", "empty data", QS + " prompts=[]", "prompts: give at least one prompt"),
    ("qs_sft_steps_0", "quickstart", "out-of-range number", QS + " sft.max_steps=0", "max_steps=0 is out of range"),
    ("qs_optim_lr_0", "quickstart", "out-of-range number", QS + " scorer_optim.learning_rate=0", "learning_rate=0.0 is out of range"),
    ("qs_tag_style", "quickstart", "bad setting value", QS + " tag_style=html", "tag_style: 'html' is not one of"),
]
# fmt: on


def _case(raw: tuple) -> Case:
    id_, command, kind, argv, says, *rest = raw
    files = rest[0] if rest else ()
    prep = rest[1] if len(rest) > 1 else None
    expect = rest[2] if len(rest) > 2 else "error"
    return Case(id_, command, kind, argv, says, tuple(files), prep, expect)


CASES: list[Case] = [_case(r) for r in CASES_RAW]


# ============================================================================= the world they run in


@dataclass
class World:
    """Good inputs and saved folders, built once; each case gets copies of the small files."""

    root: Path
    lm: Path
    enc: Path
    scorer: Path
    policy: Path
    small: dict[str, Path] = field(default_factory=dict)
    """name -> a good small file (copied into every case's folder)"""


def build_world(root: Path, lm: Path, enc: Path) -> World:
    import pandas as pd

    from condtune.io import write_json
    from condtune.modeling import load_causal_lm
    from condtune.rate.task import TaskItem, make_item_id
    from condtune.relabel import TagCard, write_tagged
    from condtune.saved_policy import save_policy
    from condtune.scorer import Scorer
    from condtune.tags import Binning, TagFormat

    root.mkdir(parents=True, exist_ok=True)
    scorer = Scorer.new(str(enc), "regression", "item").save(root / "scorer")
    model, tok = load_causal_lm(lm)
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat(), {"domain": ["book", "movie"]})
    policy = save_policy(model, tok, card, out_dir=root / "policy", base=str(lm))
    small = root / "small"
    small.mkdir()
    (small / "ratings.jsonl").write_text(jl(*GOOD_RATINGS))
    pairs = [{"prompt": "Review:", "chosen": f"Lovely film {i}.", "rejected": f"Dull film {i}."} for i in range(6)]
    (small / "pairs.jsonl").write_text(jl(*pairs))
    corpus = [
        {"prompt": "Review:", "completion": f"Text {i} was {'good' if i % 2 else 'bad'}.", "domain": "movie"}
        for i in range(8)
    ]
    (small / "corpus.jsonl").write_text(jl(*corpus))
    df = pd.DataFrame(corpus).assign(score_bin=[1, 0] * 4)
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    tcard = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    write_tagged(df, tcard, small / "tagged.jsonl")
    (small / "prompts.txt").write_text("Review:\nTweet:\n")
    items = [
        TaskItem(make_item_id("m", "Review:", sample_index=j, completion=c), "Review:", c, "m", j)
        for j, c in enumerate(["Fine.", "Bad."])
    ]
    (small / "tasks.jsonl").write_text(jl(*[vars(i) for i in items]))
    write_json(small / "tasks.card.json", {"scale": {"min": -4, "max": 4}, "models": ["m"]})
    return World(root, Path(lm), Path(enc), scorer, policy, {p.name: p for p in small.iterdir()})


# ----------------------------------------------------------------------------- named setup steps


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


def _bad_scorer(world: World, tmp: Path, damage: Callable[[Path], None]) -> None:
    damage(Path(shutil.copytree(world.scorer, tmp / "bad_scorer")))


def _bad_policy(world: World, tmp: Path, damage: Callable[[Path], None]) -> None:
    damage(Path(shutil.copytree(world.policy, tmp / "bad_policy")))


def _tagged(tmp: Path, change: Callable[[Path, Path], None]) -> None:
    change(tmp / "tagged.jsonl", tmp / "tagged.jsonl.card.json")


def _rewrite_rows(path: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    path.write_text(jl(*change(rows)))


def _tagged_consistent(tmp: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    """Rows changed and a card that describes them (so the card check passes and the rows are what is wrong)."""
    import pandas as pd

    from condtune.tables import table_digest

    path = tmp / "tagged.jsonl"
    _rewrite_rows(path, change)
    df = pd.read_json(path, lines=True)
    _edit_json(tmp / "tagged.jsonl.card.json", lambda d: d.update(n_rows=len(df), data_digest=table_digest(df)))


def _other_train_run(world: World, tmp: Path) -> None:
    out = tmp / "out" / "run"  # the {out} of the cases
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"rows": 3, "data_digest": "0" * 16, "card": {}, "sft": {}}))
    (out / "condtune_policy.json").write_bytes(SENTINEL)


def _db_with_scores(tmp: Path) -> None:
    """A ratings database beside the task that already holds a rater's score (a good output)."""
    from condtune.rate.store import Store
    from condtune.rate.task import load_task

    store = Store(tmp / "tasks.ratings.sqlite")
    store.set_scale(-4, 4)
    items = load_task(tmp / "tasks.jsonl")
    store.import_items(items, source="tasks.jsonl")
    store.add_score("ann", items[0].item_id, 3)


def _null_completion(rows: list[dict]) -> list[dict]:
    rows[2]["completion"] = None
    return rows


PREPS: dict[str, Callable[[World, Path], None]] = {
    "scorer_no_head": lambda w, t: _bad_scorer(w, t, lambda p: (p / "head.safetensors").unlink()),
    "scorer_card_cut": lambda w, t: _bad_scorer(w, t, lambda p: _truncate(p / "scorer.json", 30)),
    "scorer_card_nan": lambda w, t: _bad_scorer(
        w,
        t,
        lambda p: (p / "scorer.json").write_text(
            (p / "scorer.json").read_text().replace('"target_sd": 1.0', '"target_sd": NaN')
        ),
    ),
    "scorer_card_key": lambda w, t: _bad_scorer(
        w, t, lambda p: _edit_json(p / "scorer.json", lambda d: d.pop("objective"))
    ),
    "scorer_weights_cut": lambda w, t: _bad_scorer(
        w,
        t,
        lambda p: _truncate(
            p / "encoder" / "model.safetensors", (p / "encoder" / "model.safetensors").stat().st_size // 2
        ),
    ),
    "scorer_no_tokenizer": lambda w, t: _bad_scorer(
        w, t, lambda p: [f.unlink() for f in (p / "encoder").glob("*") if f.name.startswith(("tokenizer", "vocab"))]
    ),
    "policy_card_cut": lambda w, t: _bad_policy(w, t, lambda p: _truncate(p / "condtune_policy.json", 25)),
    "policy_weights_cut": lambda w, t: _bad_policy(w, t, lambda p: _truncate(p / "model.safetensors", 5000)),
    "policy_config_cut": lambda w, t: _bad_policy(w, t, lambda p: _truncate(p / "config.json", 20)),
    "policy_no_weights": lambda w, t: _bad_policy(w, t, lambda p: (p / "model.safetensors").unlink()),
    "policy_no_base": lambda w, t: _bad_policy(
        w, t, lambda p: _edit_json(p / "condtune_policy.json", lambda d: d.update(base_model=None))
    ),
    "tagged_card_cut": lambda w, t: _tagged(t, lambda data, card: _truncate(card, 40)),
    "tagged_card_no_binning": lambda w, t: _tagged(t, lambda data, card: _edit_json(card, lambda d: d.pop("binning"))),
    "tagged_rows_dropped": lambda w, t: _tagged(t, lambda data, card: _rewrite_rows(data, lambda rows: rows[:6])),
    "tagged_row_edited": lambda w, t: _tagged(
        t, lambda data, card: data.write_text(data.read_text().replace("Text 3 was", "Text 3 is"))
    ),
    "tagged_cut": lambda w, t: _tagged(t, lambda data, card: _truncate(data, data.stat().st_size - 20)),
    "tagged_no_tagged_prompt": lambda w, t: _tagged_consistent(
        t, lambda rows: [{k: v for k, v in r.items() if k != "tagged_prompt"} for r in rows]
    ),
    "tagged_completion_null": lambda w, t: _tagged_consistent(t, _null_completion),
    "task_card_cut": lambda w, t: _truncate(t / "tasks.card.json", 20),
    "task_card_scale_text": lambda w, t: (t / "tasks.card.json").write_text('{"scale": {"min": "low", "max": 4}}'),
    "out_other_train_run": _other_train_run,
    "task_db_with_scores": lambda w, t: _db_with_scores(t),
}


# ============================================================================= running one case


@dataclass
class Outcome:
    rc: int | None
    err: str
    warnings: list[str]
    trace: str | None
    changed: list[str]
    """files that were in the case's folder (or the shared world) before and are not byte-identical after"""

    def error_line(self, job: str) -> str:
        """The error, when it is one line: the last line of stderr (above it: progress bars at most)."""
        lines = [ln for ln in self.err.replace("\r", "\n").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ": error: " in ln or ln.startswith("Traceback")]
        return lines[-1] if lines and len(errors) == 1 and errors[0] == lines[-1] and job in lines[-1] else ""


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def prepare(case: Case, world: World, tmp: Path) -> dict[str, str]:
    """The case's folder: copies of the good small files, a good output, its files and setup step."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, path in world.small.items():
        shutil.copy(path, tmp / name)
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_bytes(SENTINEL)
    (tmp / "out.jsonl").write_bytes(SENTINEL)
    (tmp / "out.jsonl.card.json").write_bytes(SENTINEL)
    (tmp / "out.card.json").write_bytes(SENTINEL)
    for name, content in case.files:
        target = tmp / name
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.prep:
        PREPS[case.prep](world, tmp)
    return {
        "tmp": str(tmp),
        "lm": str(world.lm),
        "enc": str(world.enc),
        "scorer": str(world.scorer),
        "policy": str(world.policy),
        "out": str(tmp / "out" / "run"),  # a new folder; the good output beside it must stay as it was
        "outdir": str(tmp / "out"),  # the folder of a good output (a file in it that no command wrote)
        "outfile": str(tmp / "out.jsonl"),
        **{name.split(".")[0]: str(tmp / name) for name in world.small if not name.endswith(".card.json")},
        "task": str(tmp / "tasks.jsonl"),
    }


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _no_serving(real):
    """make_server, but serve_forever returns at once: a `condtune rate` that accepts its input
    ends (exit 0, counted as a silent acceptance) instead of serving forever."""

    def make(*args, **kw):
        server = real(*args, **kw)
        server.serve_forever = lambda *a, **k: None
        return server

    return make


def run_case(case: Case, world: World, tmp: Path) -> Outcome:
    import huggingface_hub.constants

    import condtune.commands.rate
    from condtune.cli import main as cli

    values = prepare(case, world, tmp)
    before = _digests(tmp)
    argv = later_wins(shlex.split(case.argv.format(**values)))
    handler, err, trace, rc = _Warnings(), io.StringIO(), None, None
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    if root.getEffectiveLevel() > logging.WARNING:  # the warnings are part of what is checked
        root.setLevel(logging.WARNING)
    old_cwd, old_env = os.getcwd(), dict(os.environ)
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    os.chdir(tmp)  # defaults (out=runs/...) land in the case's folder
    try:
        with (
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
            mock.patch.object(condtune.commands.rate, "make_server", _no_serving(condtune.commands.rate.make_server)),
            mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True),  # read at import, so patched too
        ):
            try:
                rc = cli(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=sys.stderr)
            except Exception:  # noqa: BLE001 - the point: an escaped exception is a traceback
                trace = traceback.format_exc()
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        root.removeHandler(handler)
        root.setLevel(old_level)
    after = _digests(tmp)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    return Outcome(rc, err.getvalue(), handler.messages, trace, changed)


def classify(case: Case, o: Outcome) -> str:
    """traceback | silent acceptance | clear error | warning | unclear: what the user saw."""
    if o.trace or "Traceback" in o.err:
        return "traceback"
    job = case.command if case.command != "(cli)" else "condtune"
    if case.expect == "warn":
        return "warning" if o.rc == 0 and any(case.says in m for m in o.warnings) else "unclear"
    if o.rc == 0:
        return "silent acceptance"
    line = o.error_line(job)
    return "clear error" if o.rc == 2 and line and case.says in line else "unclear"


# ============================================================================= the tests


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_lm, tiny_encoder) -> World:
    w = build_world(tmp_path_factory.mktemp("world"), tiny_lm, tiny_encoder)
    w.digests = {str(p): _digests(p) for p in (w.scorer, w.policy, w.lm, w.enc)}
    return w


def test_the_sweep_is_big_and_covers_every_command():
    from condtune.commands import COMMANDS

    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    assert len({(c.command, c.argv, c.files, c.prep) for c in CASES}) == len(CASES), "cases must be distinct"
    assert set(COMMANDS) <= {c.command for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, world, tmp_path):
    o = run_case(case, world, tmp_path / "case")
    got = classify(case, o)
    detail = f"rc={o.rc}\nstderr:\n{o.err[-3000:]}\nwarnings: {o.warnings}\n{o.trace or ''}"
    if case.expect == "warn":
        assert got == "warning", f"expected a warning containing {case.says!r}\n{detail}"
    else:
        assert got == "clear error", f"expected a one-line error containing {case.says!r}, got {got}\n{detail}"
    assert not o.changed, f"good outputs overwritten: {o.changed}"


def test_the_shared_folders_are_untouched(world):
    """Last: no case changed the saved scorer, policy or tiny models that they all read."""
    for path, digests in world.digests.items():
        assert _digests(Path(path)) == digests, path


# ============================================================================= the counts table

COLUMNS = ("tried", "clear errors", "warnings", "tracebacks", "silent acceptances", "unclear", "outputs overwritten")
RESULT_COLUMN = {
    "clear error": "clear errors",
    "warning": "warnings",
    "traceback": "tracebacks",
    "silent acceptance": "silent acceptances",
    "unclear": "unclear",
}


def table(results: list[tuple[Case, str, bool]], by: Callable[[Case], str], title: str) -> str:
    """A markdown table of the results grouped by ``by(case)``, with a totals row."""
    rows: dict[str, Counter] = {}
    for case, got, overwritten in results:
        c = rows.setdefault(by(case), Counter())
        c["tried"] += 1
        c[RESULT_COLUMN[got]] += 1
        c["outputs overwritten"] += overwritten
    total = sum(rows.values(), Counter())
    lines = [f"| {title} | " + " | ".join(COLUMNS) + " |", "|" + " --- |" * (len(COLUMNS) + 1 + title.count("|"))]
    for key, c in sorted(rows.items()):
        lines.append(f"| {key} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
    lines.append("| **total** | " + " | " * title.count("|") + " | ".join(f"**{total[k]}**" for k in COLUMNS) + " |")
    return "\n".join(lines)


def tables(results: list[tuple[Case, str, bool]]) -> str:
    """The three tables of docs/reliability.md: per command, per kind of badness, per both."""
    return "\n\n".join(
        [
            table(results, lambda c: f"`{c.command}`", "command"),
            table(results, lambda c: c.kind, "kind of bad input"),
            table(results, lambda c: f"`{c.command}` | {c.kind}", "command | kind of bad input"),
        ]
    )


def main() -> int:
    """Run the sweep (or the cases whose id or command is given as an argument) and print the tables."""
    import tempfile
    import time

    from condtune.assets import minilm_path, smollm2_path
    from condtune.testing import save_tiny_causal_lm, save_tiny_encoder

    logging.basicConfig(level=logging.ERROR)
    for h in logging.getLogger().handlers:
        h.setLevel(logging.ERROR)  # the warnings are collected per case, not printed
    t0 = time.time()
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        world = build_world(
            root / "world",
            save_tiny_causal_lm(root / "tiny_lm", smollm2_path(), hidden=64, layers=2),
            save_tiny_encoder(root / "tiny_encoder", minilm_path()),
        )
        shared = {p: _digests(p) for p in (world.scorer, world.policy, world.lm, world.enc)}
        results, bad = [], []
        only = set(sys.argv[1:])
        for i, case in enumerate(CASES):
            if only and case.id not in only and case.command not in only:
                continue
            t1 = time.time()
            o = run_case(case, world, root / "cases" / f"{i:03d}")
            got = classify(case, o)
            print(f"{case.id}: {got} ({time.time() - t1:.1f} s)", file=sys.__stderr__, flush=True)
            results.append((case, got, bool(o.changed)))
            if got not in ("clear error", "warning") or o.changed:
                last = (o.trace or o.err).strip().splitlines()[-1:]
                bad.append(f"- {case.id}: {got}; rc={o.rc}; changed={o.changed}; {last}; warnings={o.warnings[-2:]}")
        touched = [str(p) for p, digests in shared.items() if _digests(p) != digests]
        if touched:
            bad.append(f"- the shared saved folders changed: {touched}")
    print(tables(results))
    print(
        f"\n{len(results)} cases in {time.time() - t0:.0f} s; the shared scorer, policy and models unchanged: {not touched}"
    )
    if bad:
        print("\nnot as expected:\n" + "\n".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
