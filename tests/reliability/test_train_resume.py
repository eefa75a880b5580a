"""condtune train never resumes into another run's folder, and a checkpoint cut by a kill while
saving is skipped, not fatal."""

from __future__ import annotations

import pandas as pd
import pytest

from condtune.checkpointing import RUN_RECORD, latest_checkpoint
from condtune.cli import main as cli
from condtune.config import ConfigError
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard
from condtune.tags import Binning, TagFormat


def _data(completions):
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    df = pd.DataFrame(
        {"prompt": ["Review:"] * 8, "completion": completions * (8 // len(completions)), "score_bin": [1, 0] * 4}
    )
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    return df, card


def _train(tiny_lm, out, completions, overwrite=False, **kw):
    from condtune.modeling import load_causal_lm

    df, card = _data(completions)
    model, tok = load_causal_lm(tiny_lm)
    s = SFTSettings(
        **{
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "max_length": 32,
            "save_steps": 1,
            **kw,
        }
    )
    return train_conditional(model, tok, df, card=card, s=s, out_dir=out, base=str(tiny_lm), overwrite=overwrite)


def test_another_runs_folder_is_refused_unless_overwrite(tmp_path, tiny_lm):
    out = tmp_path / "policy"
    _train(tiny_lm, out, ["Good.", "Bad."])
    assert _train(tiny_lm, out, ["Good.", "Bad."])["steps"] == 2  # the same run: resumes (nothing left to do)
    with pytest.raises(ConfigError, match=r"holds another training run \(changed: \['data_digest'\]\)"):
        _train(tiny_lm, out, ["Great fun.", "Awful."])
    with pytest.raises(ConfigError, match="'sft'"):
        _train(tiny_lm, out, ["Good.", "Bad."], learning_rate=5e-3)
    stats = _train(tiny_lm, out, ["Great fun.", "Awful."], overwrite=True)
    assert stats["steps"] == 2 and stats["first_loss"] is not None  # trained afresh, not "resumed" at the end
    assert '"data_digest"' in (out / RUN_RECORD).read_text()


def test_the_command_says_so_in_one_line(tmp_path, tiny_lm, capsys):
    df, card = _data(["Good.", "Bad."])
    data = tmp_path / "tagged.jsonl"
    from condtune.relabel import write_tagged

    write_tagged(df, card, data)
    args = [
        "train",
        f"data={data}",
        f"model={tiny_lm}",
        "sft.max_steps=1",
        "sft.per_device_train_batch_size=4",
        f"output_dir={tmp_path / 'p'}",
    ]
    assert cli(args) == 0
    assert cli([*args, "sft.learning_rate=0.5"]) == 2
    err = capsys.readouterr().err
    assert "holds another training run" in err and "overwrite=true" in err and "Traceback" not in err
    assert cli([*args, "sft.learning_rate=0.5", "overwrite=true"]) == 0


def test_a_checkpoint_cut_while_saving_is_skipped(tmp_path, tiny_lm, caplog):
    out = tmp_path / "policy"
    _train(tiny_lm, out, ["Good.", "Bad."])
    (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").unlink()  # as a kill mid-save leaves it
    assert latest_checkpoint(out).name == "checkpoint-1" and "incomplete" in caplog.text
    assert _train(tiny_lm, out, ["Good.", "Bad."])["steps"] == 2  # resumes from step 1


def test_a_run_recorded_before_a_setting_existed_resumes_while_it_stays_at_its_default(tmp_path, tiny_lm):
    import json

    out = tmp_path / "policy"
    _train(tiny_lm, out, ["Good.", "Bad."])
    record = json.loads((out / RUN_RECORD).read_text())
    for added_later in ("freeze_layers", "contrast_pairs"):  # as condtune wrote it before these settings existed
        del record["sft"][added_later]
    (out / RUN_RECORD).write_text(json.dumps(record))
    before = (out / RUN_RECORD).read_bytes()
    assert _train(tiny_lm, out, ["Good.", "Bad."])["steps"] == 2  # the same run: resumes
    assert (out / RUN_RECORD).read_bytes() == before  # its record is kept as written
    with pytest.raises(ConfigError, match=r"changed: \['sft'\]"):  # set otherwise, the new setting is a change
        _train(tiny_lm, out, ["Good.", "Bad."], contrast_pairs="mirror")
