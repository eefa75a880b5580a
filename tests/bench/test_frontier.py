"""The conditional frontier against the trained baselines (condtune.bench.frontier): margins with
prompt-resampled intervals, on synthetic samples whose geometry is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from condtune.bench.frontier import margins, margins_tables


def _point(rng, method, checkpoint, kl, gold, *, setting="default", requested=None, seeds=(0, 1), noise=0.3):
    n = 32 * len(seeds)
    g = gold + rng.normal(0, noise, n)
    return pd.DataFrame(
        {
            "method": method,
            "setting": setting,
            "checkpoint": checkpoint,
            "decode": "T=1",
            "requested": np.nan if requested is None else requested,
            "seed": np.repeat(seeds, 32),
            "prompt_id": np.tile(np.repeat(np.arange(16), 2), len(seeds)),
            "kl": kl + rng.normal(0, 0.05, n),
            "gold": g,
            "gold2": g - 0.1,
        }
    )


@pytest.fixture(scope="module")
def samples():
    """Base at 0 nats (gold 0); PPO at 2 / 4 / 8 nats (0.8, 1.2, 1.6); a conditional policy whose top
    target is +1.5 at 2 nats and +2.0 at 5, the other target lower at 1 nat."""
    rng = np.random.default_rng(0)
    parts = [
        _point(rng, "best_of_n", "n_1", 0.0, 0.0),
        _point(rng, "ppo", "step_10", 2.0, 0.8, setting="kl_coef=0.05"),
        _point(rng, "ppo", "step_20", 4.0, 1.2, setting="kl_coef=0.05"),
        _point(rng, "ppo", "step_40", 8.0, 1.6, setting="kl_coef=0.05"),
        _point(rng, "dpo", "step_40", 20.0, 2.5, setting="beta=0.1"),  # beyond max_kl: no row of its own
    ]
    for decode, kl_top, g_top in (("anchored g=1", 2.0, 1.5), ("anchored g=2", 5.0, 2.0)):
        top = _point(rng, "conditional", "step_60", kl_top, g_top, setting="tc", requested=1.0)
        low = _point(rng, "conditional", "step_60", 1.0, -1.0, setting="tc", requested=-1.0)
        parts += [top.assign(decode=decode), low.assign(decode=decode)]
    return pd.concat(parts, ignore_index=True)


def test_each_baseline_point_against_the_conditional_hull(samples):
    m = margins(samples, n_boot=200)
    rows = {r["point"]: r for r in m["vs_baseline_points"]}
    assert list(rows) == [f"ppo kl_coef=0.05 step_{n} T=1" for n in (10, 20, 40)]
    at2 = rows["ppo kl_coef=0.05 step_10 T=1"]["policies"]["conditional tc step_60"]
    assert at2["gold_margin"] == pytest.approx(1.5 - 0.8, abs=0.15) and at2["gold_verdict"] == "above"
    lo, hi = at2["gold_margin_ci"]
    assert lo < at2["gold_margin"] < hi and hi - lo < 0.6
    at4 = rows["ppo kl_coef=0.05 step_20 T=1"]["policies"]["conditional tc step_60"]
    assert at4["gold_margin"] == pytest.approx(1.5 + 2 * 0.5 / 3 - 1.2, abs=0.15)  # on (2, 1.5)-(5, 2)
    at8 = rows["ppo kl_coef=0.05 step_40 T=1"]["policies"]["conditional tc step_60"]
    assert at8["gold_margin"] == pytest.approx(2.0 - 1.6, abs=0.15)  # past its last point: its best at less KL
    assert at2["gold2_margin"] == pytest.approx(at2["gold_margin"], abs=0.05)


def test_each_conditional_top_point_against_the_baselines_hull(samples):
    m = margins(samples, n_boot=200)
    (g1, g2) = m["vs_baselines_frontier"]  # the top target only, by KL
    assert g1["point"] == "conditional tc step_60 anchored g=1 target +1.00"
    assert g1["gold_margin"] == pytest.approx(1.5 - 0.8, abs=0.15) and g1["gold_verdict"] == "above"
    # the baselines' hull at 5 nats runs from PPO's (4, 1.2) to (8, 1.6): 1.3 (the DPO point beyond 12 nats is in it)
    assert g2["gold_margin"] == pytest.approx(2.0 - 1.3, abs=0.15) and g2["gold2_verdict"] == "above"


def test_a_point_level_with_the_hull_is_called_level():
    rng = np.random.default_rng(1)
    s = pd.concat(
        [
            _point(rng, "best_of_n", "n_1", 0.0, 0.0),
            _point(rng, "ppo", "step_10", 4.0, 1.0, setting="b"),
            _point(rng, "conditional", "step_60", 2.0, 0.5, setting="tc", requested=1.0),
        ],
        ignore_index=True,
    )
    (row,) = margins(s, n_boot=200)["vs_baselines_frontier"]
    assert abs(row["gold_margin"]) < 0.2 and row["gold_verdict"] == "level"
    md = margins_tables(margins(s, n_boot=50))
    assert "| ppo b step_10 T=1 | " in md and "conditional tc step_60" in md


def test_nothing_to_compare_says_so():
    assert margins(pd.DataFrame(), n_boot=10) == {"vs_baseline_points": [], "vs_baselines_frontier": []}
    assert margins_tables({"vs_baseline_points": [], "vs_baselines_frontier": []}).startswith("_needs")


def test_costs_name_the_first_baseline_checkpoint_that_reaches_the_conditional_gold():
    from condtune.bench.frontier import costs, costs_table

    def r(method, setting, step, gold, kl, wall, decode="T=1", seed=0):
        return {
            "method": method, "setting": setting, "seed": seed, "checkpoint": f"step_{step}", "step": step,
            "decode": decode, "reward/gold": gold, "kl/exact": kl, "cost/wall_clock_s": wall,
        }  # fmt: skip

    rows = [
        r("ppo", "b1", 10, 0.8, 3.0, 100.0),
        r("ppo", "b1", 20, 1.5, 8.0, 200.0),
        r("ppo", "b2", 10, 0.5, 1.0, 90.0),  # never reaches +1.2
        r("conditional", "tc", 60, 1.2, 5.0, 700.0, decode="anchored g=1"),
        r("conditional", "tc", 60, 2.5, 14.0, 700.0),  # beyond 12 nats: not its best decode here
        r("ppo", "b1", 10, 9.9, 1.0, 1.0, seed=1),  # another seed's rows never mix in
    ]
    (c,) = [x for x in costs(rows) if x["seed"] == 0]
    assert c["policy"] == "conditional tc step_60" and c["wall_clock_s"] == 700.0
    assert (c["best_decode"], c["gold"]) == ("anchored g=1", 1.2)
    assert c["first_reaching"] == {
        "ppo b1": {"checkpoint": "step_20", "wall_clock_s": 200.0, "kl": 8.0},
        "ppo b2": None,
    }
    assert c["sweep_wall_clock_s"] == {"ppo": 290.0}
    md = costs_table(costs(rows))
    assert "ppo b1 step_20: 200 (8.0); ppo b2: never" in md and "| ppo 290 |" in md
