"""Conditional SFT rows are trained as given (own samples exactly as sampled), and one run with
one learning-rate schedule is snapshotted on the way instead of being restarted per stage."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard
from condtune.saved_policy import POLICY_CARD
from condtune.sft_rows import sft_dataset
from condtune.tags import Binning, TagFormat


@pytest.fixture(scope="module")
def tok(tiny_lm):
    from condtune.modeling import load_tokenizer

    return load_tokenizer(tiny_lm)


def test_own_samples_are_trained_as_sampled(tok):
    eos = tok.eos_token_id
    cut = [
        tok.convert_tokens_to_ids("film"),
        tok.convert_tokens_to_ids("makers"),
    ]  # a tokenisation a re-encode would not give
    df = pd.DataFrame(
        {
            "tagged_prompt": ["Rating: 5 out of 5 stars.\nMovie review:"] * 3,
            "completion": ["filmmakers", "done", "A fine film."],
            "completion_ids": [cut, cut[:1] + [eos], None],
        }
    )
    ds = sft_dataset(df, tok, max_length=64)
    prompt = tok("Rating: 5 out of 5 stars.\nMovie review:", add_special_tokens=False)["input_ids"]
    row0, row1, row2 = ds[0], ds[1], ds[2]
    assert (
        row0["input_ids"] == prompt + cut and row0["labels"] == [-100] * len(prompt) + cut
    )  # cut at max_new_tokens: no EOS invented
    assert row1["labels"][-1] == eos  # EOS only where the model emitted it
    human = tok(" A fine film.", add_special_tokens=False)["input_ids"]
    assert row2["input_ids"] == prompt + human + [eos]  # a human text is complete: it ends with EOS
    assert sft_dataset(df, tok, max_length=len(prompt) + 1)[0]["input_ids"] == (prompt + cut)[: len(prompt) + 1]


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_snapshots_are_points_of_one_schedule(tmp_path, tiny_lm):
    from condtune.checkpointing import snapshot_callback
    from condtune.modeling import load_causal_lm

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    df = pd.DataFrame({"prompt": ["Movie review:"] * 8, "completion": ["Good.", "Bad."] * 4, "score_bin": [1, 0] * 4})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    s = SFTSettings(per_device_train_batch_size=2, learning_rate=1e-2, max_length=32, save_steps=2, warmup_ratio=0.0)

    def run(steps, out, snap_at):
        model, tok = load_causal_lm(tiny_lm)
        snap = snapshot_callback(
            "conditional", out, snap_at, conditional=True, on_save=lambda d: (d / POLICY_CARD).write_text("{}")
        )
        train_conditional(
            model,
            tok,
            df,
            card=card,
            s=SFTSettings(**{**s.__dict__, "max_steps": steps}),
            out_dir=out / "run",
            base=str(tiny_lm),
            callbacks=[snap],
        )
        return snap.records

    long = run(6, tmp_path / "long", [3, 6])
    assert [c.step for c in long] == [3, 6] and all(c.conditional and c.wall_clock_s >= 0 for c in long)
    assert (tmp_path / "long" / "step_3" / POLICY_CARD).exists()
    run(3, tmp_path / "short", [3])
    mid, final, annealed = (
        _weights(tmp_path / "long/step_3"),
        _weights(tmp_path / "long/step_6"),
        _weights(tmp_path / "short/step_3"),
    )
    key = next(k for k in mid if "embed" in k)
    # step 3 of the 6-step run is not a 3-step run annealed to zero: the schedules differ, so do the weights
    assert not torch.allclose(mid[key], annealed[key])
    assert torch.allclose(
        final[key], _weights(tmp_path / "long/run")[key]
    )  # the last snapshot is the run's final policy


def test_lora_trains_only_the_named_modules(tmp_path, tiny_lm):
    from condtune.modeling import load_causal_lm

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    df = pd.DataFrame({"prompt": ["Movie review:"] * 8, "completion": ["Good.", "Bad."] * 4, "score_bin": [1, 0] * 4})
    df["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(df["score_bin"], df["prompt"])]
    s = SFTSettings(
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        max_length=32,
        save_steps=2,
        lora_r=4,
        lora_target_modules=["v_proj"],
    )
    model, tok = load_causal_lm(tiny_lm)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    train_conditional(model, tok, df, card=card, s=s, out_dir=tmp_path / "run", base=str(tiny_lm))
    trained = _weights(tmp_path / "run")
    changed = {k for k in base if k in trained and not torch.equal(base[k], trained[k])}
    assert changed and all(".v_proj." in k for k in changed)  # merged adapters: v_proj moved, nothing else


def test_a_gathered_state_dict_saves_as_a_plain_run_does(tmp_path, tiny_lm):
    """FSDP gathers a tied output embedding as a second full copy (seen on a GPU with the shipped
    FSDP config): the saved policy must hold the same tensors as a plain save."""
    from condtune.modeling import load_causal_lm
    from condtune.saved_policy import drop_tied_copies, save_policy

    model, tok = load_causal_lm(tiny_lm)
    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    gathered = {k: v.clone() for k, v in model.state_dict().items()}
    gathered["lm_head.weight"] = model.get_input_embeddings().weight.detach().clone()  # what FSDP hands over
    save_policy(model, tok, card, out_dir=tmp_path / "plain", base=str(tiny_lm))
    save_policy(model, tok, card, out_dir=tmp_path / "gathered", base=str(tiny_lm), state_dict=gathered)
    plain, saved = _weights(tmp_path / "plain"), _weights(tmp_path / "gathered")
    assert saved.keys() == plain.keys() and "lm_head.weight" not in saved
    assert all(torch.equal(saved[k], plain[k]) for k in plain)
    # an output embedding that differs from the input one is not a tied copy: it is kept
    untied = {**gathered, "lm_head.weight": gathered["lm_head.weight"] + 1}
    assert "lm_head.weight" in drop_tied_copies(model, untied)
