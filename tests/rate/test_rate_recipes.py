"""`condtune sample` and `condtune rate`: shipped YAMLs parse, a tiny-model sample run, export,
and the server started as a process and stopped with Ctrl-C or kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from condtune.commands import rate as rate_recipe
from condtune.commands import sample as sample_recipe
from condtune.rate.store import Store
from condtune.rate.task import load_card, load_task

ROOT = Path(__file__).resolve().parents[2]


def test_task_first_argument():
    assert rate_recipe.task_first(["t.jsonl", "--export"]) == ["task=t.jsonl", "--export"]
    assert rate_recipe.task_first(["--export", "t.jsonl", "port=1"]) == ["task=t.jsonl", "--export", "port=1"]
    assert rate_recipe.task_first(["--port", "9"]) == ["--port", "9"]


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """A tiny random model (real SmolLM2 tokenizer) sampled into a task: 2 models x 3 prompts x 2."""
    from condtune.assets import smollm2_path
    from condtune.testing import save_tiny_causal_lm

    d = tmp_path_factory.mktemp("sample")
    model = save_tiny_causal_lm(d / "tiny", smollm2_path(), hidden=32)
    prompts = d / "prompts.txt"
    prompts.write_text("Movie review: it was\nTweet: <script>alert(1)</script>\nNews: today\n")
    out = d / "tasks.jsonl"
    common = [f"--prompts={prompts}", f"--output_path={out}", "sampling.max_new_tokens=6", "sampling.batch_size=8"]
    assert sample_recipe.main([f"--model={model}", *common, "-n", "2"]) == 0
    assert sample_recipe.main([f"--model={model}", *common, "--append", "seed=1", "-n", "1"]) == 0
    return out


def test_sample_writes_task_and_card(sampled):
    items = load_task(sampled)
    assert len(items) == 3 * 2 + 3  # the appended run adds n=1 per prompt (new seed, new texts)
    assert [it.sample_index for it in items[:6]] == [0, 1] * 3
    assert items[2].prompt == "Tweet: <script>alert(1)</script>"
    card = load_card(sampled)
    assert card["scale"] == {"min": -4, "max": 4} and len(card["runs"]) == 2
    assert card["runs"][0]["n"] == 2 and card["runs"][0]["sampling"]["max_new_tokens"] == 6


def test_sample_errors_name_the_file(tmp_path, capsys):
    assert sample_recipe.main([f"--prompts={tmp_path / 'missing.txt'}"]) == 2
    assert "missing.txt: prompts file not found" in capsys.readouterr().err


def test_rate_export_from_the_command(sampled, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert rate_recipe.main([str(sampled), f"db={db}", "--export", f"output_dir={tmp_path / 'ex'}"]) == 0
    store = Store(db)
    for it in store.items()[:3]:
        store.add_score("ann", it.item_id, 2)
    store.add_comparison("ann", store.next_pair("ann").pair_id, "left")
    assert rate_recipe.main([str(sampled), f"db={db}", "--export", f"output_dir={tmp_path / 'ex'}"]) == 0
    out = capsys.readouterr().out
    assert "scores=3" in out and "next: condtune scorer train" in out
    assert len((tmp_path / "ex" / "pointwise.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "ex" / "card.json").read_text())["task"] == str(sampled)


def test_rate_refuses_a_changed_task(sampled, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert rate_recipe.main([str(sampled), f"db={db}", "--export", f"output_dir={tmp_path}"]) == 0
    changed = tmp_path / "changed.jsonl"
    rows = [json.loads(line) for line in sampled.read_text().splitlines()]
    rows[0]["completion"] += " edited"
    changed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert rate_recipe.main([str(changed), f"db={db}", "--export"]) == 2
    assert "differs from the stored one" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_rate_serves_until_stopped(sampled, tmp_path, sig):
    code = "import sys; from condtune.commands.rate import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code, str(sampled), f"db={tmp_path / 's.sqlite'}", "port=0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        for _ in range(50):  # bounded: the banner comes within a few lines
            line = proc.stdout.readline()
            if line.startswith("rating page: "):
                url = line.split()[2]
                break
        assert url and url.startswith("http://127.0.0.1:")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
        with opener.open(url, timeout=10) as resp:
            assert resp.status == 200 and "A/B pairs" in resp.read().decode()
    finally:
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)  # generous: a loaded 2-core machine can be slow to unwind
    assert proc.returncode == 0 and "stopped: 0 scores" in out


def test_sample_leaves_empty_completions_out_of_the_task(tmp_path, tiny_lm, monkeypatch):
    """A sampled empty completion has nothing to rate (the rating page would refuse the task): it is left
    out and counted in the card."""
    from condtune.sampling import Samples

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Movie review:\nTweet:\n")
    texts = [[" Lovely.", " "], ["", " Fine."]]
    monkeypatch.setattr(sample_recipe, "sample", lambda *a, **k: Samples(texts, [[2, 1], [0, 2]]))
    out = tmp_path / "tasks.jsonl"
    assert sample_recipe.main([f"--model={tiny_lm}", f"--prompts={prompts}", "-n", "2", f"--output_path={out}"]) == 0
    assert sorted(it.completion for it in load_task(out)) == [" Fine.", " Lovely."]
    assert load_card(out)["runs"][-1]["empty_left_out"] == 2
