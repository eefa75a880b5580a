"""A tiny benchmark run through the real CLI: every method, every output file, and resume."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from condtune.cli import main as cli

METHODS = ["conditional", "conditional_self", "ppo", "rloo", "dpo", "best_of_n"]


@pytest.fixture(scope="module")
def bench_args(tmp_path_factory, tiny_lm, tiny_encoder):
    out = tmp_path_factory.mktemp("bench") / "run"
    return out, ["bench", "--config", "configs/bench_tiny.yaml", f"out={out}", f"model={tiny_lm}", f"scorer.backbone={tiny_encoder}",
                 "seeds=[0]", "scorer.max_items=128", "max_train_items=64", "n_train_prompts=16", "n_eval_prompts=3",
                 "sampling.max_new_tokens=6", "conditional.checkpoints=[1,2]", "ppo_checkpoints=[1,2]", "rloo.checkpoints=[1,2]",
                 "dpo.checkpoints=[1,2]", "dpo.n_pairs=16", "best_of_n.ns=[1,4]", "conditional.samples_per_prompt=2",
                 f"methods={json.dumps(METHODS)}"]


@pytest.fixture(scope="module")
def bench_run(bench_args):
    out, args = bench_args
    assert cli(args) == 0
    return out


def test_every_output_file(bench_run):
    for name in ("results.jsonl", "results.csv", "targets.csv", "table.md", "frontier.png", "reliability.png",
                 "human_ceiling.json", "self_ceiling.json", "tagged_self.jsonl", "config.json", "prompts.json", "scorers/proxy/scorer.json", "scorers/gold/scorer.json"):
        assert (bench_run / name).exists() and (bench_run / name).stat().st_size > 0, name
    for name in ("frontier.png", "reliability.png"):
        assert (bench_run / name).read_bytes()[:4] == b"\x89PNG"


def test_one_result_per_method_and_checkpoint(bench_run):
    rows = [json.loads(line) for line in (bench_run / "results.jsonl").read_text().splitlines()]
    keys = {(r["method"], r["checkpoint"]) for r in rows}
    assert len(rows) == len(keys) == 12
    assert {m for m, _ in keys} == set(METHODS)
    for r in rows:
        for k in ("reward/gold", "reward/proxy", "kl/exact", "diversity/distinct_2", "cost/wall_clock_s", "cost/generated_tokens", "cost/scorer_calls"):
            assert r[k] == r[k], (r["method"], k)  # finite, not NaN
        assert r["kl/exact"] >= 0 and r["eval/n_samples"] > 0
        assert (bench_run / "samples" / f"{r['method']}_seed0_{r['checkpoint']}.jsonl").exists()
    by = {(r["method"], r["checkpoint"]): r for r in rows}
    assert by[("best_of_n", "n_1")]["kl/exact"] == 0.0 and by[("best_of_n", "n_4")]["cost/scorer_calls"] == 4 * 3
    assert by[("ppo", "step_2")]["cost/scorer_calls"] == 2 * 4 and by[("rloo", "step_2")]["cost/generated_tokens"] > 0
    assert by[("dpo", "step_2")]["cost/scorer_calls"] == 0
    assert by[("ppo", "step_2")]["cost/wall_clock_s"] >= by[("ppo", "step_1")]["cost/wall_clock_s"]
    cond = by[("conditional", "step_2")]
    assert len(cond["targets"]) == 3 and [t["bin"] for t in cond["targets"]] == [1, 2, 3]
    assert cond["cost/scorer_calls"] == 64  # the relabel: every training text scored once by the proxy
    assert -1 <= cond["cond/spearman_gold"] <= 1 and isinstance(cond["cond/monotone_gold"], bool)
    own = by[("conditional_self", "step_2")]  # SFT on 2 base samples of each of the 16 RL prompts, relabelled by the proxy
    assert len(own["targets"]) == 3 and own["cost/generated_tokens"] > 0 and own["cost/scorer_calls"] <= 2 * 16
    assert len(pd.read_csv(bench_run / "targets.csv")) == 2 * 2 * 3
    table = (bench_run / "table.md").read_text()
    assert "| conditional_self: its data (the base-policy samples it trains on" in table and "Final conditional_self checkpoint" in table


def test_trained_policies_moved_away_from_the_reference(bench_run):
    rows = [json.loads(line) for line in (bench_run / "results.jsonl").read_text().splitlines()]
    for method in ("conditional", "conditional_self", "ppo", "dpo"):
        assert max(r["kl/exact"] for r in rows if r["method"] == method) > 0, method


def test_rerun_resumes_without_new_results(bench_args, bench_run, capsys):
    out, args = bench_args
    before = (out / "results.jsonl").read_text()
    assert cli(args) == 0
    assert (out / "results.jsonl").read_text() == before
    assert "### Every method and checkpoint" in capsys.readouterr().out


def test_report_only_reads_results_without_training(bench_args, bench_run, capsys):
    out, args = bench_args
    before = (out / "results.jsonl").read_text()
    (out / "table.md").unlink()
    assert cli([*args, "report_only=true", "model=/nonexistent"]) == 0  # nothing is loaded
    assert (out / "results.jsonl").read_text() == before and (out / "table.md").exists()
    assert "report written" in capsys.readouterr().out


def test_longer_schedule_resumes_training(bench_args, bench_run):
    """Asking for one more PPO checkpoint trains on from the last one and evaluates only the new one."""
    out, args = bench_args
    assert cli([*args, "ppo_checkpoints=[1,2,3]"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ppo = [r for r in rows if r["method"] == "ppo"]
    assert [r["checkpoint"] for r in ppo] == ["step_1", "step_2", "step_3"] and len(rows) == 13
    assert ppo[2]["cost/scorer_calls"] == 3 * 4 and ppo[2]["cost/wall_clock_s"] >= ppo[1]["cost/wall_clock_s"]


@pytest.mark.slow
def test_shipped_tiny_config_end_to_end(tmp_path, tiny_lm, tiny_encoder):
    """configs/bench_tiny.yaml as shipped (both seeds, every method), only the model paths moved."""
    out = tmp_path / "bench_tiny"
    assert cli(["bench", "--config", "configs/bench_tiny.yaml", f"out={out}", f"model={tiny_lm}", f"scorer.backbone={tiny_encoder}"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (2 + 2 + 2 + 2 + 2 + 3) and {r["seed"] for r in rows} == {0, 1}
    table = (out / "table.md").read_text()
    assert "| ppo | step_2 | 2 |" in table and " ± " in table  # mean ± sd over the two seeds
