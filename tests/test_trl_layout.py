"""The relabelled data in trl's prompt/completion layout: trl's own SFTTrainer, given the file
``write_trl`` writes, trains on the tagged prompt (the tag is read, the loss is on the answer only) and
on the very tokens ``condtune train`` trains on; the relabelled layout, whose ``prompt`` is untagged,
would have trained an unconditional model without a word."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from condtune.relabel import TagCard, card_path, relabel
from condtune.tags import TagFormat
from condtune.trl_layout import to_trl_layout, write_trl

K = 4


def relabelled():
    df = pd.DataFrame(
        {
            "prompt": ["Movie review:", "Film:", "Review of the film:"] * 4,
            "completion": [f"Answer number {i}." for i in range(11)] + ["\nOn a new line."],
            "site": ["imdb", "rotten"] * 6,
        }
    )
    return relabel(df, None, num_bins=K, tag_format=TagFormat(), tag_columns=["site"], scores=np.linspace(-1, 1, 12))


def test_the_trl_layout_puts_the_tags_in_the_prompt(tmp_path):
    tagged, card = relabelled()
    trl = to_trl_layout(tagged, card)
    assert list(trl.columns) == ["prompt", "completion", "untagged_prompt", "score", "score_bin", "site"]
    assert trl["prompt"].tolist() == tagged["tagged_prompt"].tolist()
    assert trl["untagged_prompt"].tolist() == tagged["prompt"].tolist()
    assert not tagged["prompt"].str.contains("Rating:").any()  # the trap: the relabelled layout's prompt
    assert trl["prompt"].str.contains("Rating:").all() and trl["prompt"].str.contains("Site:").all()
    assert trl["completion"][0] == " Answer number 0." and trl["completion"][11] == "\nOn a new line."
    assert trl["site"].tolist() == tagged["site"].tolist() and trl["score_bin"].tolist() == tagged["score_bin"].tolist()

    path = write_trl(tagged, card, tmp_path / "trl.jsonl")
    back = pd.read_json(path, lines=True, dtype=False)
    assert (
        back["prompt"].tolist() == trl["prompt"].tolist() and back["completion"].tolist() == trl["completion"].tolist()
    )
    described = TagCard.load(path)
    described.check_describes(back, path)  # the card beside it describes this very file
    assert described.n_rows == 12 and described.binning.edges == card.binning.edges
    assert card.data_digest is None  # the caller's card is left as it was
    assert card_path(path).exists()
    with pytest.raises(ValueError, match="tagged_prompt"):
        to_trl_layout(trl)  # a table that is not relabelled
    with pytest.raises(ValueError, match="completion_ids"):
        to_trl_layout(tagged.assign(completion_ids=[[1, 2]] * 12))


def test_trl_sft_trainer_trains_on_the_tags(tmp_path, tiny_lm):
    import datasets
    from trl import SFTConfig, SFTTrainer

    from condtune.modeling import load_causal_lm
    from condtune.sft_rows import sft_dataset
    from condtune.trl_compat import trainer_args

    tagged, card = relabelled()
    path = write_trl(tagged, card, tmp_path / "trl.jsonl")
    data = datasets.Dataset.from_pandas(pd.read_json(path, lines=True, dtype=False))  # the file, as a trl user reads it
    model, tok = load_causal_lm(tiny_lm)
    args = trainer_args(
        SFTConfig,
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        max_length=64,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)

    ours = sft_dataset(tagged, tok, 64)  # what condtune train trains on (no condition dropout)
    for i, row in enumerate(trainer.train_dataset):
        ids = row["input_ids"]
        if "labels" in row:  # trl's labels: -100 where no loss is taken
            labels = row["labels"]
        else:  # an older trl: the completion mask (1 where the loss is taken)
            labels = [t if m else -100 for t, m in zip(ids, row["completion_mask"])]
        n = next(j for j, x in enumerate(labels) if x != -100)
        prompt = tok.decode(ids[:n])
        assert prompt == tagged["tagged_prompt"][i] and "Rating:" in prompt  # the tag is read, not trained
        assert ids == ours[i]["input_ids"]  # the very tokens condtune trains on
        assert labels == ours[i]["labels"]  # the loss: the answer (and its EOS) only

    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
