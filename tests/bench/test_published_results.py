"""The published full run (docs/results/bench_sentiment.json) keeps the fixed results schema that
docs/benchmarks.md §3 describes and quotes from."""

import json
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "results" / "bench_sentiment.json"
POINT_KEYS = {"method", "setting", "checkpoint", "seeds", "gold", "gold_ci", "gold2", "gold2_ci", "kl", "kl_ci",
              "wall_clock_s", "samples_per_output"}  # fmt: skip


def test_the_published_full_run_has_every_method_on_three_seeds_with_intervals():
    s = json.loads(PUBLISHED.read_text())
    proto = s["protocol"]
    assert s["task"] == "vader_movie" and proto["seeds"] == [0, 1, 2] and proto["kl"] == "exact"
    assert proto["n_eval_prompts"] >= 64
    assert {p["method"] for p in s["points"]} == {"conditional", "conditional_self", "ppo", "dpo", "rloo", "best_of_n"}
    for p in s["points"]:
        assert POINT_KEYS <= set(p), p["method"]
        assert p["seeds"] == 3, (p["method"], p["setting"], p["checkpoint"])
        for key in ("gold", "gold2", "kl"):
            lo, hi = p[f"{key}_ci"]
            assert lo - 1e-9 <= p[key] <= hi + 1e-9, (p["method"], key)  # best-of-n's KL: a constant bound
    for c in s["controllability"]:
        assert {"spearman_gold", "spearman_gold_ci", "means_gold", "monotone_seeds", "spearman_gold2"} <= set(c)
    assert "spearman_gold" in s["ceiling"]
    margins = s["frontier_margins"]
    assert margins["vs_baseline_points"] and margins["vs_baselines_frontier"]
    assert {c["seed"] for c in s["costs"]} == {0, 1, 2}
