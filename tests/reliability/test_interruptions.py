"""Interruptions at each stage, through the real commands: a kill (here a KeyboardInterrupt raised at
the worst moment, inside the save) never leaves a state that a rerun resumes into wrongly.

* scorer train killed while saving into the folder of a good scorer: the good scorer is untouched
  (the new one is written to a temporary folder and swapped in only when complete);
* relabel killed between its two writes (new table, old card): train refuses the pair;
* train killed in the middle of writing checkpoint-2 (weights written, optimizer and trainer
  state not): the rerun says so, resumes from checkpoint-1 and finishes.
"""

from __future__ import annotations

import hashlib
import json
import logging

from condtune.cli import main as cli


def _digests(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _ratings(path, n=24):
    path.write_text(
        "".join(
            json.dumps({"text": f"Text {i} was {'good' if i % 2 else 'bad'}.", "score": i % 5 - 2}) + "\n"
            for i in range(n)
        )
    )
    return path


def test_scorer_train_killed_while_saving_keeps_the_good_scorer(tmp_path, tiny_encoder, monkeypatch):
    ratings, out = _ratings(tmp_path / "r.jsonl"), tmp_path / "scorer"
    args = [
        "scorer",
        "train",
        f"ratings={ratings}",
        f"backbone={tiny_encoder}",
        "optim.num_train_epochs=0.5",
        f"output_dir={out}",
    ]
    assert cli([*args, "val_fraction=0.25"]) == 0
    good = _digests(out)

    def killed(*a, **k):
        raise KeyboardInterrupt  # the head is the last weights written: the encoder is already on disk

    monkeypatch.setattr("condtune.scorer.save_file", killed)
    assert cli([*args, "val_fraction=0.3"]) == 130  # one line: interrupted, and what was kept
    assert _digests(out) == good  # byte for byte the earlier scorer
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scorer")] == []  # no half-written folder left


def test_relabel_killed_between_table_and_card_is_refused_by_train(
    tmp_path, tiny_encoder, tiny_lm, monkeypatch, capsys
):
    from condtune.scorer import Scorer

    scorer = Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path / "scorer")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"prompt": "Review:", "completion": f"Text {i}."}) + "\n" for i in range(9)))
    tagged = tmp_path / "tagged.jsonl"
    base = ["relabel", f"data={corpus}", f"scorer={scorer}", f"output_path={tagged}"]
    assert cli([*base, "num_bins=3"]) == 0  # a finished relabel: 3 bins
    old_card = (tmp_path / "tagged.jsonl.card.json").read_bytes()

    def killed(path, obj):
        raise KeyboardInterrupt  # the new table is in place, its card not yet written

    monkeypatch.setattr("condtune.relabel.write_json", killed)
    corpus.write_text(corpus.read_text() + json.dumps({"prompt": "Review:", "completion": "One more."}) + "\n")
    assert cli([*base, "num_bins=5"]) == 130
    monkeypatch.undo()
    assert (tmp_path / "tagged.jsonl.card.json").read_bytes() == old_card  # the old card beside the new table
    train = ["train", f"data={tagged}", f"model={tiny_lm}", "sft.max_steps=1", "sft.per_device_train_batch_size=4"]
    assert cli([*train, f"output_dir={tmp_path / 'policy'}"]) == 2
    err = capsys.readouterr().err
    assert "tagged.jsonl: has 10 rows but its card tagged.jsonl.card.json describes 9" in err and "Traceback" not in err
    assert not (tmp_path / "policy").exists()  # refused before anything was written


def test_train_killed_mid_checkpoint_resumes_from_the_one_before(tmp_path, tiny_lm, monkeypatch, caplog):
    import pandas as pd
    from transformers import Trainer

    from condtune.relabel import TagCard, write_tagged
    from condtune.tags import Binning, TagFormat

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    df = pd.DataFrame({"prompt": ["Review:"] * 8, "completion": ["Good.", "Bad."] * 4, "score_bin": [1, 0] * 4})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    data, out = write_tagged(df, card, tmp_path / "tagged.jsonl"), tmp_path / "policy"
    args = [
        "train",
        f"data={data}",
        f"model={tiny_lm}",
        "sft.max_steps=3",
        "sft.per_device_train_batch_size=4",
        "sft.save_steps=1",
    ]

    real, calls = Trainer._save_optimizer_and_scheduler, {"n": 0}

    def killed_on_the_second_save(self, output_dir):
        calls["n"] += 1
        if calls["n"] == 2:  # checkpoint-2: its weights are written, its optimizer and trainer state never will be
            raise KeyboardInterrupt
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", killed_on_the_second_save)
    assert cli([*args, f"output_dir={out}"]) == 130
    monkeypatch.undo()
    ckpts = out / "checkpoints"
    assert (ckpts / "checkpoint-2" / "model.safetensors").exists()
    assert not (ckpts / "checkpoint-2" / "trainer_state.json").exists()
    with caplog.at_level(logging.WARNING):
        assert cli([*args, f"output_dir={out}"]) == 0  # the rerun: not stuck on the cut checkpoint
    assert "checkpoint-2 is incomplete" in caplog.text
    stats = json.loads((out / "train_stats.json").read_text())["stats"]
    assert stats["steps"] == 3 and (out / "condtune_policy.json").exists()
