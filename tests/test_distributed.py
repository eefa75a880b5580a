"""Conditional SFT under a data-parallel launcher: two CPU processes (gloo) train one policy, and a
run resumed after an interruption ends with the same weights as one that was never stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from condtune.checkpointing import checkpoint_dirs

pytestmark = pytest.mark.slow


def _launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "condtune", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_two_processes_train_and_resume_to_the_same_weights(tmp_path, tiny_lm):
    from condtune.relabel import TagCard, write_tagged
    from condtune.tags import Binning, TagFormat

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[8, 8]), TagFormat())
    words = ["Good.", "Bad.", "Great fun.", "Awful.", "Fine film.", "Dull.", "Loved it.", "Hated it."]
    df = pd.DataFrame({"prompt": ["Review:"] * 16, "completion": words * 2, "score_bin": [1, 0] * 8})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    data = tmp_path / "tagged.jsonl"
    write_tagged(df, card, data)
    train = [
        "train",
        f"data={data}",
        f"model={tiny_lm}",
        "sft.max_steps=6",
        "sft.save_steps=2",
        "sft.per_device_train_batch_size=2",
    ]
    train += ["sft.learning_rate=1e-3", "sft.max_length=32"]

    straight = _launch([*train, f"output_dir={tmp_path / 'straight'}"], tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert "process 2 of 2, 4 rows a step in all" in straight.stderr  # data-parallel, not two copies
    stats = (tmp_path / "straight" / "train_stats.json").read_text()
    assert '"steps": 6' in stats  # 6 optimiser steps of 2 processes x 2 rows

    # an interruption after the checkpoint of step 4: what a kill leaves on disk (the run record,
    # complete checkpoints up to step 4, no final policy)
    resumed = tmp_path / "resumed"
    assert _launch([*train, f"output_dir={resumed}"], tmp_path).returncode == 0
    for ckpt in checkpoint_dirs(resumed):
        if ckpt.name != "checkpoint-4":
            shutil.rmtree(ckpt)
    for f in ("model.safetensors", "condtune_policy.json", "train_stats.json"):
        (resumed / f).unlink()
    again = _launch([*train, f"output_dir={resumed}"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "checkpoint-4" in again.stderr + again.stdout  # it resumed, not restarted
    a, b = _weights(tmp_path / "straight"), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_two_processes_relabel_the_same_shards_as_one(tmp_path, tiny_encoder):
    import json

    from condtune.cli import main as cli
    from condtune.relabel import TagCard
    from condtune.scorer import Scorer
    from condtune.tables import read_table

    Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path / "scorer")
    rows = [
        {"prompt": "Review:", "completion": f"It was {w} ({i}).", "domain": "movie" if i % 3 else "book"}
        for i, w in enumerate(["good", "bad", "dull", "great", "awful", "fine"] * 15)
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        "relabel",
        f"data={data}",
        f"scorer={tmp_path / 'scorer'}",
        "stream=true",
        "num_bins=3",
        "tag_columns=[domain]",
    ]
    args += ["batch_rows=8", "shard_rows=16"]  # 90 rows: 6 shards, 3 for each process

    assert cli([*args, f"output_path={tmp_path / 'one'}"]) == 0
    two = _launch([*args, f"output_path={tmp_path / 'two'}"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 2 of 2 takes shards 1, 1 + 2" in two.stderr  # the shards were split, not done twice
    a, b = read_table(tmp_path / "one"), read_table(tmp_path / "two")
    assert a["completion"].tolist() == b["completion"].tolist() == [r["completion"] for r in rows]
    assert (a["score"] - b["score"]).abs().max() < 1e-5 and a["tagged_prompt"].tolist() == b["tagged_prompt"].tolist()
    assert TagCard.load(tmp_path / "one").to_dict() == TagCard.load(tmp_path / "two").to_dict()


def test_two_processes_sample_every_prompt_once(tmp_path, tiny_lm):
    import json

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"Review {i}:\n" for i in range(5)))
    out = tmp_path / "tasks.jsonl"
    run = _launch(
        [
            "sample",
            f"model={tiny_lm}",
            f"prompts={prompts}",
            "num_return_sequences=2",
            f"output_path={out}",
            "sampling.max_new_tokens=4",
        ],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "process 2 of 2 takes prompts 1, 1 + 2" in run.stderr
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert [it["prompt"] for it in items] == [f"Review {i}:" for i in range(5) for _ in range(2)]  # prompt order kept
    assert [it["sample_index"] for it in items] == [0, 1] * 5
