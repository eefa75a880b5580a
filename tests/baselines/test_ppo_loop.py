"""PPO on a tiny model: the reward rises, resume is exact, LoRA + recipe smoke run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ppo_helpers import title_case_reward

from condtune.baselines import ppo
from condtune.baselines import rl_math as M
from condtune.baselines.ppo_checkpoint import checkpoint_dirs, latest_checkpoint
from condtune.baselines.ppo_config import PPOConfig
from condtune.baselines.ppo_models import position_ids_from_mask
from condtune.baselines.ppo_report import read_metrics
from condtune.baselines.rl_math import response_mask_after_eos
from condtune.config import ConfigError
from condtune.prompts import DEFAULT_PROMPTS


def tiny_cfg(model: Path, out: Path, **kw) -> PPOConfig:
    base = dict(
        model=str(model),
        output_dir=str(out),
        max_steps=4,
        per_device_train_batch_size=16,
        mini_batch_size=8,
        ppo_epochs=2,
        max_new_tokens=8,
        learning_rate=1e-2,
        value_head_lr=1e-2,
        kl_coef=0.01,
        bf16=False,
        progress=False,
        sample_every=0,
        save_steps=1000,
    )
    base.update(kw)
    return PPOConfig(**base)


# ---------------------------------------------------------------- small pieces
def test_response_mask_stops_after_first_eos():
    responses = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8], [2, 9, 2, 2]])
    mask, has_eos = response_mask_after_eos(responses, eos_id=2)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert has_eos.tolist() == [True, False, True]


def test_position_ids_skip_left_padding():
    am = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(am).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_config_rejects_inconsistent_batches():
    with pytest.raises(ValueError, match="multiple of mini_batch_size"):
        PPOConfig(per_device_train_batch_size=10, mini_batch_size=4)


def test_rollout_applies_penalties_and_whitening(ppo_tiny_lm, tmp_path):
    cfg = tiny_cfg(
        ppo_tiny_lm,
        tmp_path / "r",
        per_device_train_batch_size=8,
        missing_eos_penalty=1.0,
        length_penalty=0.01,
        whiten_rewards=True,
    )
    state = ppo.build_state(cfg)
    traj, ctx, metrics, completions = ppo.rollout(state, DEFAULT_PROMPTS[:8], title_case_reward, cfg=cfg)
    traj = type(traj)(*(t.cpu() if isinstance(t, torch.Tensor) else t for t in traj))  # on a GPU machine too
    mask = traj.response_mask
    raw = title_case_reward(DEFAULT_PROMPTS[:8], completions)
    has_eos = (traj.query_responses[:, ctx:] == state.tokenizer.eos_token_id).any(-1)
    expected = raw - 1.0 * (~has_eos).float() - 0.01 * mask.sum(-1)
    assert torch.allclose(traj.scores, expected, atol=1e-6)
    assert metrics[M.METRIC_RAW_SCORES] == pytest.approx(raw.mean().item(), abs=1e-6)
    assert M.masked_var(traj.rewards, mask).item() == pytest.approx(1.0, abs=1e-3)
    assert M.masked_mean(traj.advantages, mask).item() == pytest.approx(0.0, abs=1e-5)
    assert traj.logprobs.shape == traj.ref_logprobs.shape == traj.values.shape == mask.shape
    assert torch.all(traj.logprobs == traj.ref_logprobs)  # first rollout: policy == reference


# ---------------------------------------------------------------- learning
def test_reward_rises_on_a_learnable_reward(ppo_tiny_lm, tmp_path):
    cfg = tiny_cfg(ppo_tiny_lm, tmp_path / "run", max_steps=30)
    state = ppo.build_state(cfg)
    before = {k: v.clone() for k, v in state.actor.lm.state_dict().items()}
    rows = ppo.train(state, DEFAULT_PROMPTS, title_case_reward, cfg=cfg)

    scores = [r[M.METRIC_SCORES] for r in rows]
    assert len(rows) == 30 and all(math.isfinite(v) for r in rows for v in r.values())
    assert np.mean(scores[-5:]) > np.mean(scores[:5]) + 0.15, np.round(scores, 2)
    assert rows[0][M.METRIC_KL] == pytest.approx(0.0, abs=1e-4)  # policy == reference at first
    assert rows[-1][M.METRIC_KL] > 0.1  # ... and has moved away since
    for key in (M.METRIC_POLICY_LOSS, M.METRIC_VALUE_LOSS, M.METRIC_CLIPFRAC, M.METRIC_APPROX_KL, M.METRIC_TIME_STEP):
        assert key in rows[-1]
    after = state.actor.lm.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    logged = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in logged] == list(range(1, 31))
    # the final checkpoint exists even though save_steps was never reached
    assert latest_checkpoint(cfg.output_dir).name == "checkpoint-30"


# ---------------------------------------------------------------- checkpoints
def test_resume_after_a_crash_matches_an_uninterrupted_run(ppo_tiny_lm, tmp_path):
    straight_cfg = tiny_cfg(ppo_tiny_lm, tmp_path / "a", save_steps=2)
    straight = ppo.build_state(straight_cfg)
    ppo.train(straight, DEFAULT_PROMPTS, title_case_reward, cfg=straight_cfg)

    calls = {"n": 0}

    def crashing_reward(prompts, completions):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash during update 3")
        return title_case_reward(prompts, completions)

    cfg = tiny_cfg(ppo_tiny_lm, tmp_path / "b", save_steps=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ppo.train(ppo.build_state(cfg), DEFAULT_PROMPTS, crashing_reward, cfg=cfg)
    assert latest_checkpoint(cfg.output_dir).name == "checkpoint-2"
    ckpt = latest_checkpoint(cfg.output_dir)
    assert {p.name for p in ckpt.iterdir()} >= {"policy", "value_head.pt", "optimizer.pt", "rng.pt", "state.json"}

    resumed = ppo.build_state(cfg)
    assert resumed.step == 2
    ppo.train(resumed, DEFAULT_PROMPTS, title_case_reward, cfg=cfg)

    a, b = straight.actor.state_dict(), resumed.actor.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert [r["step"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl")] == [1, 2, 3, 4]
    assert [p.name for p in checkpoint_dirs(cfg.output_dir)] == ["checkpoint-4"]  # save_total_limit=1


def test_another_runs_folder_is_refused_and_resume_false_starts_afresh(ppo_tiny_lm, tmp_path):
    cfg = tiny_cfg(ppo_tiny_lm, tmp_path / "run", max_steps=2, save_steps=1)
    ppo.train(ppo.build_state(cfg), DEFAULT_PROMPTS, title_case_reward, cfg=cfg)
    assert ppo.build_state(cfg).step == 2  # the same run resumes
    assert ppo.build_state(tiny_cfg(ppo_tiny_lm, tmp_path / "run", max_steps=2, save_steps=1, sample_every=5)).step == 2
    with pytest.raises(ConfigError, match=r"holds another ppo run \(changed: \['learning_rate'\]\).*overwrite=true"):
        ppo.build_state(tiny_cfg(ppo_tiny_lm, tmp_path / "run", max_steps=2, save_steps=1, learning_rate=5e-3))
    fresh = tiny_cfg(ppo_tiny_lm, tmp_path / "run", max_steps=2, save_steps=1, learning_rate=5e-3, overwrite=True)
    assert ppo.build_state(fresh).step == 0
    assert checkpoint_dirs(fresh.output_dir) == [] and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_adaptive_kl_state_is_checkpointed(ppo_tiny_lm, tmp_path):
    cfg = tiny_cfg(
        ppo_tiny_lm,
        tmp_path / "c",
        max_steps=2,
        adaptive_kl=True,
        target_kl=0.01,
        kl_horizon=16,
        per_device_train_batch_size=8,
        mini_batch_size=8,
        ppo_epochs=1,
    )
    state = ppo.build_state(cfg)
    rows = ppo.train(state, DEFAULT_PROMPTS, title_case_reward, cfg=cfg)
    meta = json.loads((latest_checkpoint(cfg.output_dir) / "state.json").read_text())
    assert meta["kl_controller"]["value"] == pytest.approx(state.kl_ctl.value)
    assert rows[1][M.METRIC_KL_COEF] != cfg.kl_coef  # beta moved after the first rollout
    assert ppo.build_state(cfg).kl_ctl.value == pytest.approx(state.kl_ctl.value)


# ---------------------------------------------------------------- recipe (LoRA)
def test_recipe_smoke_with_lora(ppo_tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM

    from condtune.commands import ppo as recipe

    out = tmp_path / "recipe"
    rc = recipe.main(
        [
            "--config",
            "ppo_tiny",
            f"model={ppo_tiny_lm}",
            f"output_dir={out}",
            "max_steps=2",
            "lora_r=4",
            "reward=lowercase",
        ]
    )
    assert rc == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert len(rows) == 2
    assert rows[0][M.METRIC_KL] == pytest.approx(0.0, abs=1e-4)  # reference = base with adapters off
    card = json.loads((out / "final" / "ppo_card.json").read_text())
    assert card["updates"] == 2 and card["scorer"] == "builtin:lowercase"
    final = AutoModelForCausalLM.from_pretrained(out / "final")  # LoRA merged into a plain model
    base = AutoModelForCausalLM.from_pretrained(ppo_tiny_lm)
    changed = [k for k, v in base.state_dict().items() if not torch.equal(v, final.state_dict()[k])]
    assert changed and all("proj" in k for k in changed)
    assert (out / "final" / "value_head.pt").exists()
