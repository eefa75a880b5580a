"""Fast unit tests of the benchmark's parts: best-of-n picks, DPO pairs, relative bins, the task's
prompts, sweeps, and the report (summary.json schema) on synthetic results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from condtune import config as C
from condtune.baselines.best_of_n import group_picks
from condtune.baselines.dpo import build_pairs
from condtune.bench.methods import make_run, relative_scores
from condtune.bench.report import write_report
from condtune.bench.settings import BenchConfig, variants
from condtune.bench.store import append_result, read_results
from condtune.bench.task import load_task, prompt_sets


def test_group_picks():
    scores = np.array([[0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    assert group_picks(scores, 8) == [(0, 1), (1, 7)]
    assert group_picks(scores, 4) == [(0, 1), (0, 7), (1, 0), (1, 7)]
    assert len(group_picks(scores, 1)) == 16
    assert group_picks(scores, 3) == [(0, 1), (0, 4), (1, 0), (1, 3)]  # the remainder (6, 7) is not a full group


def test_build_pairs_respects_margin_and_orders_by_rating():
    items = pd.DataFrame(
        {"prompt": ["P:"] * 6, "completion": list("abcdef"), "score": [-2.0, -1.0, 0.0, 0.5, 1.5, 3.0]}
    )
    pairs = build_pairs(items, 40, 1.5, seed=0)
    s = dict(zip(items["completion"], items["score"]))
    assert len(pairs) == 40 and (pairs["prompt"] == "P:").all()
    assert all(s[c] - s[r] >= 1.5 for c, r in zip(pairs["chosen"], pairs["rejected"]))
    with pytest.raises(ValueError, match="margin"):
        build_pairs(items, 10, 9.0)


def test_relative_scores_remove_the_prompt_and_measure_its_share():
    groups = np.array(["a", "a", "b", "b"])
    rel, share = relative_scores(np.array([1.0, 3.0, 11.0, 13.0]), groups)
    assert rel.tolist() == [6.0, 8.0, 6.0, 8.0]  # each prompt's mean removed, the overall mean (7) kept
    assert share == pytest.approx(49 / 51)  # between: var of means 50 - within 2 / 2 = 49; within 2
    assert relative_scores(np.array([1.0, 3.0, 1.0, 3.0]), groups)[1] == 0.0
    rng = np.random.default_rng(0)  # pure noise, 2 samples per prompt: the naive share would be ~0.5
    noise = relative_scores(rng.normal(size=2000), np.repeat(np.arange(1000), 2))[1]
    assert noise < 0.1


@pytest.fixture(scope="module")
def movie():
    return load_task("vader_movie")


def test_prompt_sets_are_shared_distinct_neutral_and_disjoint(movie):
    p = prompt_sets(movie, n_train=128, n_eval=64, words=2)
    assert p == prompt_sets(movie, n_train=128, n_eval=64, words=2)  # one function, the same prompts every time
    assert p.eval[0] == "Movie review:" and len(set(p.eval)) == 64 and len(set(p.train)) == 128
    for prompt in p.eval[1:] + p.train:
        opening = prompt[len("Movie review: ") :]
        assert len(opening.split()) == 2 and not any(
            w.lower().strip(".,!?'\"") in movie.evaluative for w in opening.split()
        )
    held = set(movie.split()[1]["completion"])
    assert all(any(t.startswith(q[len("Movie review: ") :]) for t in held) for q in p.eval[1:6])
    assert movie.neutral_opening("A wonderful film about grief and loss", 2) is None  # an evaluative word (lexicon)
    assert movie.neutral_opening("A mesmerizing film about grief and loss", 2) is None  # one the raters' data marks
    assert movie.lexicon < movie.evaluative and "film" not in movie.evaluative
    assert movie.neutral_opening("The film runs two hours long", 2) == "The film"
    assert movie.review_text("Movie review: The film", " was dull.") == "was dull."  # raters read what the policy wrote


def test_unknown_task_lists_the_tasks():
    with pytest.raises(ValueError, match="vader_amazon"):
        load_task("imdb")
    assert load_task("vader_amazon").header == "Product review:"


def test_sweeps_apply_typed_overrides_and_name_a_typo():
    cfg = C.parse(BenchConfig, ["sweeps.ppo=[kl_coef=0.2,kl_coef=0.02]"])
    assert variants(cfg, "ppo") == ["kl_coef=0.2", "kl_coef=0.02"] and variants(cfg, "dpo") == ["default"]
    run = make_run(cfg, "ppo", "kl_coef=0.2", seed=1)
    assert (
        run.settings.kl_coef == 0.2 and run.settings.learning_rate == cfg.ppo.learning_rate and cfg.ppo.kl_coef == 0.05
    )
    assert make_run(cfg, "rloo", "learning_rate=1e-5 beta=0.02", seed=0).settings.beta == 0.02
    assert make_run(cfg, "conditional", "sft.learning_rate=3e-5", seed=0).settings.sft.learning_rate == 3e-5
    with pytest.raises(C.ConfigError, match="kl_cof"):
        make_run(cfg, "ppo", "kl_cof=0.2", seed=0)
    with pytest.raises(C.ConfigError, match="learning_rate: expected a number"):
        make_run(cfg, "dpo", "learning_rate=fast", seed=0)


def _synthetic_store(out):
    """Two seeds of PPO (two checkpoints), best-of-n and a 3-target conditional policy, 8 prompts x 2 samples."""
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        for method, ck, step, gold, kl, targets in (
            ("ppo", "step_10", 10, 0.5, 2.0, [None]),
            ("ppo", "step_20", 20, 1.0, 4.0, [None]),
            ("best_of_n", "n_4", 4, 0.8, 0.64, [None]),
            ("conditional", "step_60", 60, 0.0, 3.0, [-1.0, 0.0, 1.0]),
        ):
            frames = []
            for t in targets:
                n = 16
                g = (t if t is not None else gold) + rng.normal(0, 0.3, n)
                frames.append(
                    pd.DataFrame(
                        {
                            "prompt_id": np.repeat(np.arange(8), 2),
                            "prompt": "P",
                            "text": [f"w{i} x{i % 3} y" for i in range(n)],
                            "n_tokens": 5,
                            "kl": kl + rng.normal(0, 0.1, n),
                            "gold": g,
                            "gold2": g + 0.1,
                            "proxy": g + 0.2,
                            **({"requested": t} if t is not None else {}),
                        }
                    )
                )
            row = {
                "method": method,
                "setting": "kl_coef=0.05" if method == "ppo" else "default",
                "seed": seed,
                "checkpoint": ck,
                "step": step,
                "decode": "T=1",
                "temperature": 1.0,
                "guidance": 1.0,
                "cost/wall_clock_s": 10.0 * step,
                "samples_per_output": 4 if method == "best_of_n" else 1,
            }
            append_result(out, row, pd.concat(frames, ignore_index=True))


def test_report_writes_the_fixed_schema_with_intervals(tmp_path):
    _synthetic_store(tmp_path)
    rows = read_results(tmp_path)
    ceiling = {
        "source": "held-out human texts",
        "n_texts": 100,
        "spearman_gold": 0.9,
        "mae_gold": 0.5,
        "means_gold": [-1.2, 0.0, 1.1],
        "monotone_gold": True,
        "requested": [-1.0, 0.0, 1.0],
    }
    protocol = {
        "task": "vader_movie",
        "n_eval_prompts": 8,
        "eval_n": 2,
        "seeds": [0, 1],
        "max_new_tokens": 24,
        "kl": "exact",
        "n_boot": 200,
    }
    paths = write_report(
        tmp_path, rows, ceilings={"conditional": ceiling}, protocol=protocol, command="condtune bench x"
    )
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0, p
    s = json.loads(paths["summary.json"].read_text())
    assert s["task"] == "vader_movie" and s["protocol"]["n_eval_prompts"] == 8 and s["ceiling"]["spearman_gold"] == 0.9
    ppo = next(p for p in s["points"] if p["method"] == "ppo" and p["checkpoint"] == "step_20")
    assert (
        ppo["setting"] == "kl_coef=0.05"
        and ppo["seeds"] == 2
        and ppo["n_samples"] == 32
        and ppo["wall_clock_s"] == 200.0
    )
    for key in ("gold", "gold2", "proxy", "kl", "distinct2"):
        lo, hi = ppo[f"{key}_ci"]
        assert lo <= ppo[key] <= hi, key
    assert ppo["gold"] == pytest.approx(1.0, abs=0.2) and ppo["kl"] == pytest.approx(4.0, abs=0.1)
    assert next(p for p in s["points"] if p["method"] == "best_of_n")["samples_per_output"] == 4
    cond = [p for p in s["points"] if p["method"] == "conditional"]
    assert sorted(p["target"] for p in cond) == [-1.0, 0.0, 1.0]  # one point per requested target
    (ctrl,) = s["controllability"]
    assert (
        ctrl["spearman_gold"] > 0.7
        and ctrl["spearman_gold_ci"][0] <= ctrl["spearman_gold"] <= ctrl["spearman_gold_ci"][1]
    )
    assert ctrl["monotone_seeds"] == 2 and len(ctrl["means_gold"]) == 3 and "spearman_gold2" in ctrl
    md = paths["table.md"].read_text()
    assert "| ppo | kl_coef=0.05 | step_20 | T=1 | – | 2 |" in md and "ceiling of conditional" in md
    assert "| ppo kl_coef=0.05 step_20 T=1 | 4.0" in md  # the equal-KL comparison row
    # the conditional top target (+1 gold at 3 nats) against PPO's line (2, +0.5) .. (4, +1.0): +0.75 there
    (top,) = s["frontier_margins"]["vs_baselines_frontier"]
    assert top["gold_margin"] == pytest.approx(0.25, abs=0.15) and top["gold_margin_ci"][0] <= top["gold_margin"]


def test_check_same_run_records_then_guards_prompts_and_raters(tmp_path):
    from condtune.bench.runner import check_same_run
    from condtune.config import ConfigError

    prompts, probe = {"train": ["P: a"], "eval": ["P:"]}, {"proxy": np.array([0.1, 0.2]), "gold": np.array([0.3, 0.4])}
    check_same_run(tmp_path, prompts, probe)  # the first run records its identity
    check_same_run(
        tmp_path, prompts, {"proxy": probe["proxy"] + 0.01, "gold": probe["gold"]}
    )  # a retrained scorer's last digits
    with pytest.raises(ConfigError, match="another gold rater"):
        check_same_run(tmp_path, prompts, {"proxy": probe["proxy"], "gold": probe["gold"] + 0.1})
    with pytest.raises(ConfigError, match="other prompts"):
        check_same_run(tmp_path, {"train": ["P: b"], "eval": ["P:"]}, probe)


def test_frontier_curves_follow_the_top_target_across_guidance_scales():
    """A conditional run is one curve per decode family at its top requested target and final
    checkpoint, across guidance scales; a baseline is one curve across its checkpoints."""
    from condtune.bench.plots import frontier_curves

    def pt(method, setting, step, kl, target=None, g=1.0, anchored=False, contrast="untagged"):
        return dict(
            method=method,
            setting=setting,
            checkpoint=f"step_{step}",
            step=step,
            kl=kl,
            target=target,
            guidance=g,
            anchored=anchored,
            contrast=contrast,
            temperature=1.0,
        )

    pts = [pt("ppo", "kl_coef=0.05", s, kl) for s, kl in ((20, 3.0), (10, 1.0))]
    for step in (60, 120):
        for target in (-2.0, 0.0, 2.0):
            pts.append(pt("conditional", "default", step, 0.5 + target, target))
            pts += [pt("conditional", "default", step, g + target, target, g, True, "mirror") for g in (1.5, 0.5)]
    curves = frontier_curves(pts)
    assert list(curves) == ["ppo kl_coef=0.05", "conditional: plain / CFG", "conditional: anchored vs mirror"]
    assert [p["step"] for p in curves["ppo kl_coef=0.05"]] == [10, 20]  # sorted by KL
    mirror = curves["conditional: anchored vs mirror"]
    assert [(p["step"], p["target"], p["guidance"]) for p in mirror] == [(120, 2.0, 0.5), (120, 2.0, 1.5)]
    from condtune.bench.plots import SHADES, _curve_styles

    pts += [pt("ppo", "kl_coef=0.2", 10, 2.0)]
    pts += [pt("conditional", "sft.tag_contrast=1", 60, g, 2.0, g, True, "mirror") for g in (0.5, 1.0)]
    styles = _curve_styles(frontier_curves(pts))
    # baselines: one colour, the settings told apart by line style
    assert styles["ppo kl_coef=0.05"]["color"] == styles["ppo kl_coef=0.2"]["color"]
    assert styles["ppo kl_coef=0.05"]["linestyle"] != styles["ppo kl_coef=0.2"]["linestyle"]
    # conditional: the shade says the decode family, the line style the setting
    mirror = [styles["conditional: anchored vs mirror"], styles["conditional sft.tag_contrast=1: anchored vs mirror"]]
    assert {s["color"] for s in mirror} == {SHADES["conditional"][2]}
    assert mirror[0]["linestyle"] != mirror[1]["linestyle"]
    assert styles["conditional: plain / CFG"]["color"] == SHADES["conditional"][0]


def test_pool_targets_pools_seeds_bin_by_bin_where_their_targets_differ():
    """Online rounds refit the bins per seed: each seed requests slightly other targets. The report pools
    them bin by bin at the bins' mean target; where the seeds request the same targets nothing changes."""
    from condtune.bench.report import RUN_KEYS, pool_targets

    run = {k: "x" for k in RUN_KEYS}
    online = pd.DataFrame([{**run, "seed": s, "requested": t + 0.02 * s} for s in (0, 1) for t in (-1.0, 2.0)])
    assert pool_targets(online)["requested"].tolist() == pytest.approx([-0.99, 2.01, -0.99, 2.01])
    offline = pd.DataFrame([{**run, "seed": s, "requested": t} for s in (0, 1, 2) for t in (0.1, 0.7)])
    assert pool_targets(offline)["requested"].tolist() == offline["requested"].tolist()  # bit for bit
    untargeted = pd.DataFrame([{**run, "method": "ppo", "seed": 0, "requested": np.nan}])
    assert pool_targets(untargeted)["requested"].isna().all()
