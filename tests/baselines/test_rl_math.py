"""PPO maths against hand-computed values (condtune.baselines.rl_math)."""

from __future__ import annotations

import math

import pytest
import torch

from condtune.baselines import rl_math as M


def t(x):
    return torch.tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------- masked statistics
def test_masked_mean_and_var_ignore_masked_positions():
    x = t([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = t([[1, 1, 0], [1, 1, 0]])
    assert M.masked_mean(x, mask).item() == pytest.approx(2.5)
    assert M.masked_mean(x, mask, dim=1).tolist() == pytest.approx([1.5, 3.5])
    # values 1, 2, 3, 4: biased var 1.25, unbiased 5/3
    assert M.masked_var(x, mask, unbiased=False).item() == pytest.approx(1.25)
    assert M.masked_var(x, mask).item() == pytest.approx(5 / 3)


def test_masked_whiten_gives_zero_mean_unit_variance_on_mask():
    torch.manual_seed(0)
    x = torch.randn(4, 6) * 3 + 7
    mask = torch.ones(4, 6)
    mask[:, 4:] = 0
    w = M.masked_whiten(x, mask)
    assert M.masked_mean(w, mask).item() == pytest.approx(0.0, abs=1e-5)
    assert M.masked_var(w, mask).item() == pytest.approx(1.0, abs=1e-4)
    assert torch.all(w[:, 4:] == 0)


def test_masked_whiten_without_shift_keeps_the_mean():
    x = t([[1.0, 2.0, 3.0, 6.0]])
    mask = torch.ones_like(x)
    w = M.masked_whiten(x, mask, shift_mean=False)
    assert M.masked_mean(w, mask).item() == pytest.approx(3.0, abs=1e-5)
    assert M.masked_var(w, mask).item() == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- GAE
def test_gae_matches_hand_computed_three_step_case():
    # gamma = 0.9, lambda = 0.8, rewards (0, 0, 1), values (0.5, 0.4, 0.6)
    # delta_2 = 1 - 0.6 = 0.4                   A_2 = 0.4
    # delta_1 = 0.9 * 0.6 - 0.4 = 0.14          A_1 = 0.14 + 0.72 * 0.4 = 0.428
    # delta_0 = 0.9 * 0.4 - 0.5 = -0.14         A_0 = -0.14 + 0.72 * 0.428 = 0.16816
    values, rewards = t([[0.5, 0.4, 0.6]]), t([[0.0, 0.0, 1.0]])
    adv, ret = M.estimate_advantages(values, rewards, torch.ones(1, 3), gamma=0.9, lam=0.8)
    assert adv[0].tolist() == pytest.approx([0.16816, 0.428, 0.4], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.66816, 0.828, 1.0], abs=1e-6)


def test_gae_treats_padding_as_terminal():
    # second token is the last real one: its bootstrap value is 0, the pad's value/reward ignored
    # delta_1 = 1 - 0.4 = 0.6 -> A_1 = 0.6;  delta_0 = 0.9 * 0.4 - 0.5 = -0.14 -> A_0 = -0.14 + 0.72 * 0.6
    values, rewards = t([[0.5, 0.4, 9.9]]), t([[0.0, 1.0, 5.0]])
    adv, ret = M.estimate_advantages(values, rewards, t([[1, 1, 0]]), gamma=0.9, lam=0.8)
    assert adv[0].tolist() == pytest.approx([0.292, 0.6, 0.0], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.792, 1.0, 0.0], abs=1e-6)


def test_gae_with_gamma_lambda_one_is_monte_carlo_return_minus_value():
    values, rewards = t([[0.3, -0.2, 0.1, 0.7]]), t([[0.1, -0.5, 0.0, 2.0]])
    adv, ret = M.estimate_advantages(values, rewards, torch.ones(1, 4), gamma=1.0, lam=1.0)
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1)
    assert torch.allclose(ret, reward_to_go, atol=1e-6)
    assert torch.allclose(adv, reward_to_go - values, atol=1e-6)


def test_gae_whitening_option():
    torch.manual_seed(1)
    values, rewards = torch.randn(3, 5), torch.randn(3, 5)
    mask = torch.ones(3, 5)
    adv, ret = M.estimate_advantages(values, rewards, mask, whiten=True)
    raw, ret2 = M.estimate_advantages(values, rewards, mask, whiten=False)
    assert M.masked_mean(adv, mask).item() == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(ret, ret2)  # returns are computed before whitening
    assert torch.allclose(adv, M.masked_whiten(raw, mask), atol=1e-6)


# ---------------------------------------------------------------- log-probs, KL, rewards
def test_logprobs_and_entropy_from_logits():
    logits = torch.randn(2, 3, 7)
    labels = torch.randint(0, 7, (2, 3))
    expected = torch.log_softmax(logits, -1).gather(-1, labels[..., None])[..., 0]
    assert torch.allclose(M.logprobs_from_logits(logits, labels), expected, atol=1e-6)
    assert torch.allclose(M.entropy_from_logits(torch.zeros(1, 1, 7)), torch.tensor([[math.log(7)]]))


def test_kl_estimators_pointwise():
    lp, ref = t([-1.0, -2.0]), t([-1.5, -1.0])
    log_r = lp - ref  # 0.5, -1.0
    assert M.kl_estimate(lp, ref, "k1").tolist() == pytest.approx(log_r.tolist())
    assert M.kl_estimate(lp, ref, "k2").tolist() == pytest.approx((0.5 * log_r**2).tolist())
    assert M.kl_estimate(lp, ref, "k3").tolist() == pytest.approx((torch.exp(-log_r) - 1 + log_r).tolist())
    assert torch.all(M.kl_estimate(lp, ref, "k3") >= 0)
    assert M.kl_estimate(ref, ref, "k3").tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        M.kl_estimate(lp, ref, "k9")


def test_kl_estimators_are_consistent_with_the_exact_kl():
    torch.manual_seed(0)
    p = torch.softmax(torch.tensor([1.0, 0.2, -0.5, 0.0]), -1)
    q = torch.softmax(torch.tensor([0.8, 0.4, -0.3, -0.1]), -1)
    exact = (p * (p / q).log()).sum().item()
    x = torch.multinomial(p, 200_000, replacement=True)
    lp, lq = p.log()[x], q.log()[x]
    assert M.kl_estimate(lp, lq, "k1").mean().item() == pytest.approx(exact, rel=0.1)
    assert M.kl_estimate(lp, lq, "k3").mean().item() == pytest.approx(exact, rel=0.1)
    assert M.kl_estimate(lp, lq, "k2").mean().item() == pytest.approx(exact, rel=0.1)  # p close to q


def test_kl_penalised_rewards_put_score_on_last_real_token():
    lp = t([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    ref = t([[-1.5, -1.0, -3.0], [-1.0, -2.0, -7.0]])
    mask = t([[1, 1, 1], [1, 1, 0]])
    rewards, kl, non_score = M.kl_penalised_rewards(t([2.0, -1.0]), lp, ref, mask=mask, beta=0.1)
    assert torch.allclose(kl, t([[0.5, -1.0, 0.0], [0.0, 1.0, 0.0]]))
    assert torch.allclose(non_score, t([[-0.05, 0.1, 0.0], [0.0, -0.1, 0.0]]))
    assert torch.allclose(rewards, t([[-0.05, 0.1, 2.0], [0.0, -1.1, 0.0]]))
    assert M.last_token_index(mask).tolist() == [2, 1]


def test_penalise_scores_for_missing_eos_and_length():
    scores = t([1.0, 1.0, 1.0])
    has_eos = torch.tensor([True, False, True])
    lengths = torch.tensor([3, 10, 5])
    assert M.penalise_scores(scores, has_eos, lengths).tolist() == [1.0, 1.0, 1.0]
    assert M.penalise_scores(scores, has_eos, lengths, missing_eos_penalty=2.0).tolist() == [1.0, -1.0, 1.0]
    out = M.penalise_scores(scores, has_eos, lengths, length_penalty=0.1)
    assert out.tolist() == pytest.approx([0.7, 0.0, 0.5])


# ---------------------------------------------------------------- clipped losses
def test_policy_loss_at_ratio_one_is_minus_mean_advantage():
    lp = t([[-1.0, -2.0, -0.5]])
    adv = t([[1.0, -2.0, 4.0]])
    out = M.policy_loss(lp, lp.clone(), adv, mask=t([[1, 1, 0]]))
    assert out.loss.item() == pytest.approx(0.5)  # -(1 - 2) / 2
    assert out.clipfrac.item() == 0.0
    assert out.approx_kl.item() == pytest.approx(0.0, abs=1e-7)
    assert out.ratio.item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "ratio, adv, clipped",
    [
        (1.5, 1.0, True),  # positive advantage, ratio above 1 + eps: no more incentive
        (0.5, 1.0, False),  # positive advantage, ratio below 1 - eps: still pushed up
        (0.5, -1.0, True),  # negative advantage, ratio below 1 - eps: no more incentive
        (1.5, -1.0, False),  # negative advantage, ratio above 1 + eps: still pushed down
        (1.1, 1.0, False),  # inside the trust region
    ],
)
def test_policy_loss_clipping(ratio, adv, clipped):
    old = t([[-1.0]])
    lp = (old + math.log(ratio)).requires_grad_(True)
    out = M.policy_loss(lp, old, t([[adv]]), mask=t([[1.0]]), clip_eps=0.2)
    out.loss.backward()
    assert out.clipfrac.item() == (1.0 if clipped else 0.0)
    if clipped:
        assert lp.grad.item() == 0.0
        assert out.loss.item() == pytest.approx(-adv * (1.2 if ratio > 1 else 0.8))
    else:
        assert lp.grad.item() == pytest.approx(-adv * ratio, rel=1e-5)
    assert out.approx_kl.item() == pytest.approx(ratio - 1 - math.log(ratio), rel=1e-4)


def test_value_loss_clipping():
    old, ret, mask = t([[0.0, 0.0]]), t([[1.0, 1.0]]), t([[1.0, 1.0]])
    # first value moved 0.5 toward the return (clipped to 0.2: larger error wins -> clipped);
    # second sits inside the clip range.
    values = t([[0.5, 0.1]]).requires_grad_(True)
    out = M.value_loss(values, old, ret, mask=mask, clip_eps=0.2)
    out.loss.backward()
    # token 1: max(0.25, 0.64) = 0.64; token 2: 0.81 -> 0.5 * mean = 0.3625
    assert out.loss.item() == pytest.approx(0.3625)
    assert out.clipfrac.item() == pytest.approx(0.5)
    assert values.grad[0, 0].item() == 0.0
    assert values.grad[0, 1].item() == pytest.approx(0.5 * (0.1 - 1.0))


# ---------------------------------------------------------------- KL controllers
def test_fixed_kl_controller_is_constant():
    ctl = M.FixedKLController(0.1)
    assert ctl.update(100.0, 16) == 0.1 and ctl.value == 0.1


def test_adaptive_kl_controller_moves_beta_toward_target():
    up = M.AdaptiveKLController(0.1, target=6.0, horizon=100)
    up.update(12.0, 10)  # KL above target: error clipped to +0.2
    assert up.value == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))
    down = M.AdaptiveKLController(0.1, target=6.0, horizon=100)
    down.update(5.4, 10)  # KL 10% below target
    assert down.value == pytest.approx(0.1 * (1 - 0.1 * 10 / 100))
    same = M.AdaptiveKLController(0.1, target=6.0, horizon=100)
    same.update(6.0, 10)
    assert same.value == pytest.approx(0.1)
    same.update(float("nan"), 10)
    assert same.value == pytest.approx(0.1)
    restored = M.AdaptiveKLController(0.5, target=6.0, horizon=100)
    restored.load_state_dict(up.state_dict())
    assert restored.value == up.value
