"""The recipe by default: a policy trained with the tag contrast records the recipe's decode in its card,
and a request that names no decode uses it (anchored on the base, against the mirrored bin's tag); a
policy whose card records none decodes as it always did."""

from __future__ import annotations

import json

import pytest

from condtune.commands.train import TrainConfig
from condtune.errors import ConfigError
from condtune.generate import ConditionalPolicy
from condtune.relabel import TagCard
from condtune.saved_policy import PLAIN, POLICY_CARD, RECIPE, Decode, load_policy_decode
from condtune.tags import Binning, TagFormat

CARD = TagCard(Binning(edges=[-1.0, 0.0, 1.0, 2.0], centers=[-2.0, -0.5, 0.5, 1.5, 3.0], counts=[1] * 5), TagFormat())


def policy(decode: Decode) -> ConditionalPolicy:
    return ConditionalPolicy(None, None, CARD, base="base", decode=decode)


def test_the_recipe_decodes_anchored_against_the_mirrored_bin():
    p = policy(RECIPE)
    assert p.resolve_decode(score=3.0) == (True, 1.0, -2.0)  # top bin against the bottom one
    assert p.resolve_decode(score=-2.0) == (True, 1.0, 3.0)
    assert p.resolve_decode(bin_index=1) == (True, 1.0, 1.5)
    assert p.resolve_decode(bin_index=2) == (True, 1.0, None)  # the middle bin: against the untagged prompt
    assert p.resolve_decode(score=3.0, guidance_scale=0.5) == (True, 0.5, -2.0)  # one dial
    assert p.resolve_decode() == (False, 1.0, None)  # no score: nothing to guide toward


def test_what_the_request_says_wins_and_plain_is_one_setting():
    p = policy(RECIPE)
    assert p.resolve_decode(score=3.0, anchored=True, guidance_scale=2.0) == (True, 2.0, None)
    assert p.resolve_decode(score=3.0, contrast_score=-0.5) == (False, 1.0, -0.5)
    assert p.resolve_decode("plain", score=3.0) == (False, 1.0, None)
    with pytest.raises(ConfigError, match="decode=plain samples the policy as trained"):
        p.resolve_decode("plain", score=3.0, guidance_scale=2.0)
    with pytest.raises(ConfigError, match="decode='greedy'"):
        p.resolve_decode("greedy", score=3.0)
    with pytest.raises(ConfigError, match="score=nan"):
        p.resolve_decode(score=float("nan"))


def test_a_card_without_a_decode_decodes_as_it_always_did(tmp_path):
    p = policy(PLAIN)
    assert p.resolve_decode(score=3.0) == (False, 1.0, None)
    assert p.resolve_decode(score=3.0, guidance_scale=2.0) == (False, 2.0, None)  # classifier-free, as before
    (tmp_path / POLICY_CARD).write_text(json.dumps({"base_model": "b", **CARD.to_dict()}))
    assert load_policy_decode(tmp_path) == PLAIN


def test_a_damaged_decode_record_names_the_card(tmp_path):
    from condtune.artifacts import ArtifactError

    (tmp_path / POLICY_CARD).write_text(json.dumps({"decode": {"anchored": "yes"}, **CARD.to_dict()}))
    with pytest.raises(ArtifactError, match=POLICY_CARD):
        load_policy_decode(tmp_path)


def test_condtune_train_trains_the_recipe_by_default():
    s = TrainConfig().sft
    assert s.tag_contrast == 1.0 and s.condition_dropout == 0.1


def test_a_trained_recipe_records_its_decode_and_generate_uses_it(tmp_path, tiny_lm, capsys):
    import numpy as np
    import pandas as pd

    from condtune.cli import main as cli
    from condtune.relabel import relabel, write_tagged

    df = pd.DataFrame({"prompt": ["Review:"] * 12, "completion": [f"Text number {i}." for i in range(12)]})
    tagged, card = relabel(df, None, num_bins=3, scores=np.linspace(-1, 1, 12))
    write_tagged(tagged, card, tmp_path / "tagged.jsonl")
    out = tmp_path / "policy"
    args = [f"data={tmp_path / 'tagged.jsonl'}", f"model={tiny_lm}", "sft.max_steps=1"]
    assert cli(["train", *args, "sft.per_device_train_batch_size=4", f"output_dir={out}"]) == 0
    assert load_policy_decode(out) == RECIPE
    assert "contrast=mirror" in (out / "README.md").read_text()
    capsys.readouterr()
    gen = ["generate", f"model={out}", "score=1", "num_return_sequences=1", "sampling.max_new_tokens=2", "--json"]
    assert cli(gen) == 0  # anchored on tiny_lm against the bottom bin: no flag needed
    assert cli([*gen, "decode=plain"]) == 0


def test_push_to_hub_needs_a_repo_and_pushes_the_trained_policy(tmp_path, tiny_lm, capsys):
    from unittest import mock

    import numpy as np
    import pandas as pd

    from condtune.cli import main as cli
    from condtune.relabel import relabel, write_tagged

    with pytest.raises(ConfigError, match="push_to_hub=true needs hub_model_id"):
        from condtune import config as C

        C.parse(TrainConfig, ["push_to_hub=true"])
    df = pd.DataFrame({"prompt": ["Review:"] * 12, "completion": [f"Text number {i}." for i in range(12)]})
    tagged, card = relabel(df, None, num_bins=3, scores=np.linspace(-1, 1, 12))
    write_tagged(tagged, card, tmp_path / "tagged.jsonl")
    out = tmp_path / "policy"
    args = [f"data={tmp_path / 'tagged.jsonl'}", f"model={tiny_lm}", "sft.max_steps=1", f"output_dir={out}"]
    with mock.patch("condtune.commands.train.push_policy", return_value="https://hf.co/me/x") as push:
        assert cli(["train", *args, "sft.per_device_train_batch_size=4", "push_to_hub=true", "hub_model_id=me/x"]) == 0
    push.assert_called_once_with(str(out), "me/x")
    assert "pushed" in capsys.readouterr().out
