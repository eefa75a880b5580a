"""The online loop on a tiny model: rounds sample at the targets, grow the pool with the sampled
token ids, refit the bins, train on, write a round table with costs and KL; a rerun resumes
mid-round (scored samples are reused, never redrawn)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from condtune.online import OnlineSettings, requested_bins, run_online
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard
from condtune.sampling import SamplingConfig
from condtune.tables import read_table
from condtune.tags import Binning, TagFormat


class LengthReward:
    """A stand-in proxy: longer completions score higher."""

    def __init__(self):
        self.calls = 0

    def score_pairs(self, prompts, completions, batch_size=64):
        self.calls += len(completions)
        return np.array([len(c) / 10.0 for c in completions])


def test_requested_bins_mostly_top():
    b = requested_bins(4000, 5, 0.75, rng=np.random.default_rng(0))
    assert set(b) <= set(range(5)) and 0.78 < np.mean(b == 4) < 0.82  # 0.75 + 0.25 / 5


def test_out_of_range_online_settings():
    with pytest.raises(ValueError, match="online settings"):
        OnlineSettings(top_share=1.5)


def test_rounds_grow_the_pool_refit_and_resume(tmp_path, tiny_lm):
    from condtune.modeling import load_causal_lm

    card = TagCard(Binning(edges=[0.5], centers=[0.2, 0.9], counts=[8, 8]), TagFormat(), scorer="length")
    pool = pd.DataFrame(
        {
            "prompt": ["Movie review:"] * 16,
            "completion": ["Ok.", "A long and winding tale."] * 8,
            "score": [0.3, 2.4] * 8,
        }
    )
    tagged = pool.assign(score_bin=[0, 1] * 8)
    tagged["tagged_prompt"] = [card.prefix(bin_index=b) + p for b, p in zip(tagged["score_bin"], tagged["prompt"])]
    s = SFTSettings(
        max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3, max_length=40, save_steps=100, kl_coef=0.1
    )
    model, tok = load_causal_lm(tiny_lm)
    train_conditional(model, tok, tagged, card=card, s=s, out_dir=tmp_path / "start", base=str(tiny_lm))
    o = OnlineSettings(rounds=2, samples_per_prompt=3, steps_per_round=2, kl_samples=4)
    prompts = ["Movie review:", "Review: The"]
    sampling = SamplingConfig(max_new_tokens=6, batch_size=8, bf16=False)
    reward = LengthReward()
    rounds = dict(prompts=prompts, s=s, o=o, sampling=sampling, out_dir=tmp_path / "online", base=str(tiny_lm))
    table = run_online(tmp_path / "start", pool, reward, **rounds)

    assert [r["round"] for r in table] == [1, 2] and reward.calls == 2 * 6
    for r in table:
        assert r["top_kl"] >= 0 and r["generated_tokens"] > 0 and r["train_seconds"] > 0 and np.isfinite(r["top_proxy"])
    assert [r["pool_rows"] for r in table] == [16 + 6, 16 + 12]
    assert table[1]["sampled_by"].endswith("round_1/policy")  # round 2 samples from round 1's policy
    samples = read_table(tmp_path / "online/round_1/samples.jsonl")
    assert all(isinstance(ids, list) and ids for ids in samples["completion_ids"])  # kept as sampled token ids
    card2 = json.loads((tmp_path / "online/round_2/policy/condtune_policy.json").read_text())
    assert card2["binning"]["edges"] != [0.5] and sum(card2["binning"]["counts"]) == 28  # bins refit over the pool
    assert json.loads((tmp_path / "online/rounds.json").read_text()) == table

    # interrupted after round 2's samples were scored, before its training finished: the rerun reuses them
    import shutil

    shutil.rmtree(tmp_path / "online/round_2/policy")
    before = (tmp_path / "online/round_2/samples.jsonl").read_text()
    again = run_online(tmp_path / "start", pool, reward, **rounds)
    assert reward.calls == 2 * 6  # nothing sampled or scored again
    assert (tmp_path / "online/round_2/samples.jsonl").read_text() == before
    assert (tmp_path / "online/round_2/policy/condtune_policy.json").exists() and len(again) == 2
    assert again[1]["generated_tokens"] == table[1]["generated_tokens"]  # its costs come from the record
