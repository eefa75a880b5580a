"""Outputs never alias inputs, never replace a stranger's files, fail on the machine's faults with one
line, and one run at a time holds an output: every case is refused before any work (one line, exit 2)
and leaves every file as it was."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path
from unittest import mock

import pytest

from condtune import outputs
from condtune.config import ConfigError
from condtune.modeling import check_launcher_env
from tests.conftest import make_ratings, run_cli


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _run(capsys, args: list[str]) -> tuple[int, str]:
    """(exit code, the one error line)."""
    rc, err = run_cli(capsys, args)
    lines = [line for line in err.splitlines() if "error:" in line or "interrupted" in line]
    assert len(lines) <= 1, err
    return rc, lines[0] if lines else ""


@pytest.fixture
def folder(tmp_path) -> Path:
    """A user's folder: ratings, a tagged table with its card, a note; nothing condtune wrote."""
    d = tmp_path / "D"
    d.mkdir()
    (d / "ratings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in make_ratings(n_items=8)))
    (d / "x.jsonl").write_text('{"prompt": "Review:", "completion": "Fine."}\n')
    (d / "notes.txt").write_text("my notes\n")
    return d


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    outputs.release()


# ----------------------------------------------------------------------------- path aliasing

ALIASES = [
    # (id, argv with {D}, what the error names)
    (
        "scorer_out_holds_ratings",
        "scorer train ratings={D}/ratings.jsonl backbone=none output_dir={D}",
        "holds the input ratings=",
    ),
    (
        "scorer_out_is_ratings_parent_dot",
        "scorer train ratings=D/ratings.jsonl backbone=none output_dir=D/.",
        "holds the input",
    ),
    (
        "scorer_out_inside_input",
        "scorer train ratings={D} backbone=none output_dir={D}/sub",
        "lies inside the input ratings=",
    ),
    ("relabel_out_is_data", "relabel data={D}/x.jsonl scorer={D} output_path={D}/x.jsonl", "is the input data="),
    (
        "relabel_card_is_edges",
        "relabel data={D}/x.jsonl edges_from={D}/y.jsonl.card.json output_path={D}/y.jsonl",
        "is the input edges_from=",
    ),
    ("train_out_is_model", "train data={D}/x.jsonl model={D}/m output_dir={D}/m", "is the input model="),
    ("train_out_is_config", "train --config {D}/c.yaml output_dir={D}/c.yaml", "--config"),
    ("dpo_out_holds_pairs", "dpo pairs={D}/x.jsonl output_dir={D}", "holds the input pairs="),
    ("rloo_out_is_scorer", "rloo scorer={D}/m output_dir={D}/m", "is the input scorer="),
    ("best_of_n_out_is_model_symlink", "best-of-n model={D}/m output_dir={D}/link", "is the input model="),
    ("relabel_out_is_a_hard_link_to_data", "relabel data={D}/x.jsonl output_path={D}/hard.jsonl", "is the input data="),
    ("ppo_out_holds_prompts", "ppo prompts={D}/x.jsonl output_dir={D}", "holds the input prompts="),
    ("sample_out_is_prompts", "sample prompts={D}/x.jsonl output_path={D}/x.jsonl", "is the input prompts="),
    ("out_is_current_folder", "train data={D}/x.jsonl output_dir=.", "is the current folder"),
    ("out_holds_current_folder", "dpo pairs={D}/x.jsonl output_dir=..", "is the current folder or holds it"),
]


@pytest.mark.parametrize("case", ALIASES, ids=[c[0] for c in ALIASES])
def test_an_output_that_aliases_an_input_is_refused_and_nothing_changes(case, folder, tmp_path, capsys):
    _, argv, says = case
    (folder / "m").mkdir()
    (folder / "m" / "config.json").write_text("{}\n")
    (folder / "c.yaml").write_text(f"data: {folder}/x.jsonl\n")
    (folder / "y.jsonl.card.json").write_text("{}\n")
    (folder / "link").symlink_to(folder / "m")
    os.link(folder / "x.jsonl", folder / "hard.jsonl")
    before = _digests(tmp_path)
    rc, line = _run(capsys, argv.format(D=folder).split())
    assert rc == 2 and says in line, line
    assert _digests(tmp_path) == before


# ----------------------------------------------------------------------------- a stranger's files


def test_a_folder_of_a_stranger_is_refused_before_training(folder, capsys):
    rc, line = _run(capsys, ["scorer", "train", f"ratings={folder}/ratings.jsonl", "backbone=none", "output_dir=other"])
    assert rc != 2 or "holds files" not in line  # a new folder: fine (here it fails later, on backbone=none)
    other = Path("other")
    other.mkdir(exist_ok=True)
    (other / "thesis.tex").write_text("years of work\n")
    rc, line = _run(capsys, ["scorer", "train", f"ratings={folder}/ratings.jsonl", "output_dir=other"])
    assert rc == 2 and "holds files that are not a scorer (thesis.tex)" in line and "overwrite=true" in line
    rc, line = _run(capsys, ["train", f"data={folder}/x.jsonl", "output_dir=other"])
    assert rc == 2 and "holds files that are not a condtune policy run (thesis.tex)" in line
    assert (other / "thesis.tex").read_text() == "years of work\n"


def test_a_previous_output_of_the_same_kind_passes_the_check(tmp_path):
    run = tmp_path / "policy"
    run.mkdir()
    (run / "run.json").write_text("{}\n")
    (run / "notes.txt").write_text("mine\n")  # beside a run's files: a run writes into its folder, deletes nothing
    outputs.check_folder_kind("out", run, what="a run", marks=("run.json",))
    scorer = tmp_path / "scorer"
    scorer.mkdir()
    (scorer / "scorer.json").write_text("{}\n")
    (scorer / ".relabel").mkdir()  # condtune's own hidden state is not a stranger's file
    outputs.check_folder_kind("out", scorer, what="a scorer", writes=("scorer.json",))
    (scorer / ".git").mkdir()  # a user's dotfolder is
    with pytest.raises(ConfigError, match=r"holds files that are not a scorer \(\.git\)"):
        outputs.check_folder_kind("out", scorer, what="a scorer", writes=("scorer.json",))
    outputs.check_folder_kind("out", scorer, what="a scorer", writes=("scorer.json",), overwrite=True)


def test_saving_a_scorer_never_deletes_a_strangers_file(tiny_encoder, tmp_path):
    from condtune.scorer import Scorer

    scorer = Scorer.new(str(tiny_encoder), "regression", "none")
    out = tmp_path / "s"
    scorer.save(out)
    scorer.save(out)  # a scorer over a scorer: fine
    (out / "thesis.tex").write_text("years of work\n")
    with pytest.raises(FileExistsError, match="thesis.tex"):
        scorer.save(out)
    assert (out / "thesis.tex").exists() and (out / "scorer.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    scorer.save(out, overwrite=True)
    assert not (out / "thesis.tex").exists()


# ----------------------------------------------------------------------------- the machine's faults


def test_an_unwritable_output_is_refused_before_the_slow_work(folder, capsys):
    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    with (
        mock.patch("condtune.outputs.tempfile.mkstemp", refuse),
        mock.patch("condtune.commands.scorer_train.train_scorer") as train,
    ):
        rc, line = _run(capsys, ["scorer", "train", f"ratings={folder}/ratings.jsonl", "output_dir=new"])
    assert rc == 2 and "output_dir=new: cannot write in" in line and "Read-only file system" in line
    train.assert_not_called()


def test_too_little_room_is_refused_before_the_slow_work(tmp_path):
    usage = type("U", (), {"free": 10 * 2**20})
    with (
        mock.patch("condtune.outputs.shutil.disk_usage", return_value=usage),
        pytest.raises(ConfigError, match=r"out=o: .* has 0.01 GiB free; this run writes about 1.00 GiB"),
    ):
        outputs.check_writable("out", "o", need_bytes=2**30)


@pytest.mark.parametrize(
    "exc, says",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "out/head.safetensors"),
            "out/head.safetensors: the disk is full",
        ),
        (OSError(errno.EACCES, "Permission denied", "out/x"), "out/x: permission denied"),
        (MemoryError(), "out of memory"),
    ],
    ids=["disk_full", "permission", "memory"],
)
def test_a_fault_while_working_is_one_line(exc, says, folder, capsys):
    with mock.patch("condtune.commands.scorer_train.train_scorer", side_effect=exc):
        rc, line = _run(capsys, ["scorer", "train", f"ratings={folder}/ratings.jsonl", "output_dir=new"])
    assert rc == 1 and says in line, line
    assert not Path("new").exists()


def test_ctrl_c_says_what_was_kept_and_how_to_go_on(folder, capsys):
    with mock.patch("condtune.commands.train.TagCard.load", side_effect=KeyboardInterrupt):
        rc, line = _run(capsys, ["train", f"data={folder}/x.jsonl", "output_dir=p"])
    assert rc == 130 and line.startswith("condtune train: interrupted;") and "rerun the same command" in line
    assert not outputs.lock_path("p").exists()  # the lock goes with the run


@pytest.mark.parametrize(
    "env, says",
    [
        ({"LOCAL_RANK": "abc"}, "LOCAL_RANK='abc' is not a whole number"),
        ({"RANK": "-1"}, "RANK='-1' is not a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 must be below WORLD_SIZE=2"),
        ({"MASTER_PORT": "http"}, "MASTER_PORT='http'"),
    ],
)
def test_a_malformed_launcher_environment_is_named(env, says):
    with pytest.raises(ConfigError, match=says):
        check_launcher_env(env)
    check_launcher_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "", "MASTER_PORT": "29500"})


def test_a_malformed_launcher_environment_is_one_line_from_the_cli(folder, capsys, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "abc")
    rc, line = _run(capsys, ["relabel", f"data={folder}/x.jsonl", f"scorer={folder}", "output_path=t.jsonl"])
    assert rc == 2 and "LOCAL_RANK='abc'" in line


# ----------------------------------------------------------------------------- one run at a time


def test_a_second_run_into_an_output_in_use_is_refused(folder, capsys):
    other = subprocess.Popen(["sleep", "60"])
    try:
        holder = {"pid": other.pid, "host": socket.gethostname(), "job": "train", "since": "2026-12-07 10:00:00"}
        outputs.lock_path("p").write_text(json.dumps(holder))
        rc, line = _run(capsys, ["train", f"data={folder}/x.jsonl", "output_dir=p"])
        assert (
            rc == 2 and f"output_dir=p: in use by condtune train (pid {other.pid} on" in line and "wait for it" in line
        )
    finally:
        other.kill()
        other.wait()
    assert json.loads(outputs.lock_path("p").read_text())["pid"] == other.pid  # refused: the lock is untouched


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    path = outputs.lock_path(tmp_path / "p")
    path.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "job": "train"}))
    outputs.lock("out", tmp_path / "p", "train")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    outputs.release()
    assert not path.exists()


def test_a_lock_from_another_host_is_not_taken(tmp_path):
    path = outputs.lock_path(tmp_path / "p")
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "job": "bench"}))
    with pytest.raises(ConfigError, match=r"in use by condtune bench \(pid 1 on elsewhere"):
        outputs.lock("out", tmp_path / "p", "bench")
