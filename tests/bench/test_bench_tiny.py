"""A tiny benchmark run through the real CLI: every method, a PPO sweep, guidance, every output
file, the fixed summary schema, resume, report-only and the disk pruning."""

from __future__ import annotations

import json

import pytest

from condtune.cli import main as _cli
from tests.conftest import later_wins


def cli(argv: list[str]) -> int:
    """The CLI, a setting added to the base command line replacing the base's (the CLI refuses one given twice)."""
    return _cli(later_wins(argv))


METHODS = ["conditional", "conditional_self", "conditional_online", "ppo", "rloo", "dpo", "best_of_n"]


@pytest.fixture(scope="module")
def bench_args(tmp_path_factory, tiny_lm, tiny_encoder):
    out = tmp_path_factory.mktemp("bench") / "run"
    return out, [
        "bench",
        "--config",
        "condtune/configs/bench_tiny.yaml",
        f"output_dir={out}",
        f"model={tiny_lm}",
        f"scorer.backbone={tiny_encoder}",
        "seeds=[0]",
        "scorer.max_train_samples=128",
        "max_train_samples=64",
        "n_train_prompts=16",
        "n_eval_prompts=4",
        "n_boot=100",
        "sampling.max_new_tokens=6",
        "conditional.checkpoints=[1,2]",
        "ppo_checkpoints=[1,2]",
        "rloo.checkpoints=[1,2]",
        "dpo.checkpoints=[1,2]",
        "dpo.max_train_samples=16",
        "best_of_n.ns=[1,4]",
        "conditional.samples_per_prompt=2",
        "conditional.online.rounds=1",
        "conditional.online.steps_per_round=1",
        "conditional.online.samples_per_prompt=1",
        "conditional.anchored_guidance=[1.5]",
        "conditional.contrast_guidance=[1.0]",
        f"methods={json.dumps(METHODS)}",
    ]


@pytest.fixture(scope="module")
def bench_run(bench_args):
    out, args = bench_args
    assert cli(args) == 0
    return out


def _rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_output_file(bench_run):
    for name in (
        "results.jsonl",
        "results.csv",
        "summary.json",
        "table.md",
        "frontier.png",
        "reliability.png",
        "protocol.json",
        "ceiling_conditional.json",
        "ceiling_conditional_self.json",
        "config.json",
        "prompts.json",
        "scorers/proxy/scorer.json",
        "scorers/gold/scorer.json",
        "scorers/gold2/ngram_scorer.json",
    ):
        assert (bench_run / name).exists() and (bench_run / name).stat().st_size > 0, name
    for name in ("frontier.png", "reliability.png"):
        assert (bench_run / name).read_bytes()[:4] == b"\x89PNG"
    prompts = json.loads((bench_run / "prompts.json").read_text())
    assert prompts["eval"][0] == "Movie review:" and len(set(prompts["eval"])) == 4


def test_one_result_per_run_checkpoint_and_decode(bench_run):
    rows = _rows(bench_run)
    keys = {(r["method"], r["setting"], r["checkpoint"], r["decode"]) for r in rows}
    # conditional and conditional_self: 2 checkpoints x 4 decodes (guidance 1 and 2, anchored 1.5, anchored 1 vs
    # the mirrored tag); conditional_online: (2 + 1 round) x 4; ppo: 2 settings x 2; rloo, dpo: 2; best-of-n: 2
    assert len(rows) == len(keys) == 8 + 8 + 12 + 4 + 2 + 2 + 2
    assert {r["setting"] for r in rows if r["method"] == "ppo"} == {"kl_coef=0.02", "kl_coef=0.2"}
    for r in rows:
        for k in ("reward/gold", "reward/gold2", "reward/proxy", "kl/exact", "cost/wall_clock_s"):
            assert r[k] == r[k], (r["method"], k)  # finite, not NaN
        assert r["kl/exact"] >= 0 and (bench_run / r["samples"]).exists()
    by = {(r["method"], r["setting"], r["checkpoint"], r["decode"]): r for r in rows}
    assert (
        by[("best_of_n", "default", "n_1", "T=1")]["kl/exact"] == 0.0
        and by[("best_of_n", "default", "n_4", "T=1")]["samples_per_output"] == 4
    )
    assert by[("ppo", "kl_coef=0.2", "step_2", "T=1")]["cost/scorer_calls"] == 2 * 4
    cond, guided = by[("conditional", "default", "step_2", "T=1")], by[("conditional", "default", "step_2", "T=1 g=2")]
    assert (
        len(cond["targets"]) == 3 and cond["cost/scorer_calls"] == 64
    )  # the relabel: every training text scored once by the proxy
    assert guided["kl/exact"] != cond["kl/exact"]  # the KL of the guided distribution, not of the plain one
    anchored = by[("conditional", "default", "step_2", "T=1 anchored g=1.5")]
    assert anchored["anchored"] and anchored["kl/exact"] >= 0 and anchored["kl/exact"] != cond["kl/exact"]
    mirror = by[("conditional", "default", "step_2", "T=1 anchored g=1 vs mirror")]
    top, middle = mirror["targets"][-1], mirror["targets"][1]  # 3 targets: the middle one is its own mirror
    assert mirror["contrast"] == "mirror" and top["kl/exact"] > 1e-3
    assert middle["kl/exact"] < 1e-4  # a zero contrast: the base itself, so no KL
    assert by[("conditional_self", "default", "step_2", "T=1")]["cost/generated_tokens"] > 0
    online, offline = (
        by[("conditional_online", "default", "round_1", "T=1")],
        by[("conditional_online", "default", "step_2", "T=1")],
    )
    assert online["step"] == 3 and online["cost/wall_clock_s"] > offline["cost/wall_clock_s"]
    assert (
        online["cost/generated_tokens"] > 0 and online["cost/scorer_calls"] == 64 + 16
    )  # relabel + one sample per training prompt


def test_summary_schema(bench_run):
    s = json.loads((bench_run / "summary.json").read_text())
    assert s["task"] == "vader_movie" and s["protocol"]["n_eval_prompts"] == 4 and s["protocol"]["kl"] == "exact"
    assert set(s["protocol"]["raters"]) == {"proxy", "gold", "gold2"}
    for p in s["points"]:
        for key in (
            "method",
            "setting",
            "checkpoint",
            "seeds",
            "gold",
            "gold_ci",
            "gold2",
            "gold2_ci",
            "kl",
            "kl_ci",
            "wall_clock_s",
            "samples_per_output",
        ):
            assert key in p, (p["method"], key)
    assert len([p for p in s["points"] if p["method"] == "conditional"]) == 2 * 4 * 3  # checkpoints x decodes x targets
    for c in s["controllability"]:
        assert {"spearman_gold", "spearman_gold_ci", "means_gold", "monotone_seeds", "spearman_gold2"} <= set(c)
    assert (
        "spearman_gold" in s["ceiling"]
        and s["ceilings"]["conditional_self"]["between_prompt_variance_share"] is not None
    )


def test_disk_is_freed_after_evaluation(bench_run):
    assert not list(bench_run.glob("seed_0/*/*/checkpoints")) and not list(bench_run.glob("seed_0/*/*/run"))
    assert not list(bench_run.glob("**/optimizer.pt"))
    assert (
        bench_run / "seed_0/conditional/default/step_2/model.safetensors"
    ).exists()  # keep_weights: the final conditional policy
    assert not (bench_run / "seed_0/conditional/default/step_1").exists()
    assert not list(bench_run.glob("seed_0/ppo/*/step_*"))


def test_rerun_resumes_without_new_results(bench_args, bench_run, capsys):
    out, args = bench_args
    before = (out / "results.jsonl").read_text()
    assert cli(args) == 0
    assert (out / "results.jsonl").read_text() == before
    assert "### Every point on the reward–KL plane" in capsys.readouterr().out


def test_report_only_reads_results_without_training(bench_args, bench_run, capsys):
    out, args = bench_args
    before = (out / "results.jsonl").read_text()
    (out / "table.md").unlink()
    assert cli([*args, "report_only=true", "model=/nonexistent"]) == 0  # nothing is loaded
    assert (out / "results.jsonl").read_text() == before and (out / "table.md").exists()


def test_an_archive_carries_the_results_to_a_machine_without_out(bench_args, bench_run, tmp_path, monkeypatch):
    """A piece's results outlive out/: pushed to an archive (no weights), pulled into a fresh out/ on
    another machine, where nothing is retrained and the report pools the same results; a run whose
    settings changed since is refused there, as it would be in its own out/."""
    from condtune.bench import methods

    out, args = bench_args
    archive = tmp_path / "archive"
    assert cli([*args, f"archive={archive}"]) == 0  # everything is done: it only fills the archive
    assert (archive / "results.jsonl").read_text().splitlines() == (out / "results.jsonl").read_text().splitlines()
    assert (archive / "run_identity.json").exists() and (archive / "ceiling_conditional.json").exists()
    assert (archive / "protocol.json").read_text() == (out / "protocol.json").read_text()  # the raters' figures
    assert (archive / "seed_0/ppo/kl_coef=0.02/checkpoints.json").exists()
    assert not [p for p in archive.rglob("*") if p.suffix in (".safetensors", ".pt", ".bin")]
    assert sum(p.stat().st_size for p in archive.rglob("*") if p.is_file()) < 2_000_000

    def no_training(ctx, run, work):
        raise AssertionError(f"{run.method} [{run.setting}] was retrained")

    monkeypatch.setattr(methods, "TRAINERS", {k: no_training for k in methods.TRAINERS})
    fresh = tmp_path / "fresh"  # a new machine: scorers retrained (seeded), no runs
    assert cli([*args, f"output_dir={fresh}", f"archive={archive}"]) == 0
    points = lambda o: json.loads((o / "summary.json").read_text())["points"]  # noqa: E731
    assert points(fresh) == points(out)
    report_only = [*args, f"output_dir={tmp_path / 'report'}", f"archive={archive}", "report_only=true"]
    assert cli(report_only) == 0  # from the archive alone: the same summary, byte for byte
    assert (tmp_path / "report/summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert (
        cli([*args, f"output_dir={tmp_path / 'other'}", f"archive={archive}", "conditional.sft.learning_rate=0.5"]) == 2
    )


def _conditional_only(bench_args, new) -> list[str]:
    """The tiny bench's command for a new out folder: the conditional method alone, to one checkpoint,
    with the first run's raters (not trained again)."""
    out, args = bench_args
    return [
        *args,
        f"output_dir={new}",
        f"proxy_scorer={out / 'scorers/proxy'}",
        f"gold_scorer={out / 'scorers/gold'}",
        'methods=["conditional"]',
        "conditional.checkpoints=[2]",
    ]


def test_a_scale_added_to_a_sweep_entry_evaluates_the_run_already_trained(bench_args, bench_run, tmp_path, monkeypatch):
    from condtune.bench import methods

    new = tmp_path / "scales"
    base = _conditional_only(bench_args, new)
    assert cli([*base, 'sweeps.conditional=["sft.learning_rate=1e-3 contrast_guidance=[1.0]"]']) == 0

    def no_training(ctx, run, work):
        raise AssertionError(f"{run.method} [{run.setting}] was retrained")

    monkeypatch.setattr(methods, "TRAINERS", {k: no_training for k in methods.TRAINERS})
    assert cli([*base, 'sweeps.conditional=["sft.learning_rate=1e-3 contrast_guidance=[1.0,2.0]"]']) == 0
    rows = _rows(new)
    assert {r["setting"] for r in rows} == {"sft.learning_rate=1e-3"} and (
        new / "seed_0/conditional/sft.learning_rate=1e-3"
    ).is_dir()
    assert [r["decode"] for r in rows] == [  # the four decodes of the first command, then the new scale
        "T=1",
        "T=1 g=2",
        "T=1 anchored g=1.5",
        "T=1 anchored g=1 vs mirror",
        "T=1 anchored g=2 vs mirror",
    ]


def test_the_pairwise_term_trains_on_the_base_models_samples_and_pays_for_them(bench_args, bench_run, tmp_path):
    """A conditional run with sft.pairwise > 0 ranks pairs of the base model's own samples (the
    conditional_self corpus): their sampling and scoring are part of its cost."""
    new = tmp_path / "pairwise"
    base = [*_conditional_only(bench_args, new), "conditional.guidance=[1.0]"]
    assert cli([*base, 'sweeps.conditional=["default", "sft.pairwise=1 sft.pairwise_margin=0"]']) == 0
    by = {r["setting"]: r for r in _rows(new)}
    plain, ranked = by["default"], by["sft.pairwise=1 sft.pairwise_margin=0"]
    assert plain["cost/generated_tokens"] == 0 and plain["cost/scorer_calls"] == 64  # the relabel only
    assert ranked["cost/generated_tokens"] > 0 and ranked["cost/scorer_calls"] > 64  # + the base's samples, scored
    assert list((new / "corpus").glob("tagged_conditional_self_*.jsonl"))


def test_a_new_decode_of_an_archived_run_retrains_it_to_the_same_weights(bench_args, bench_run, tmp_path):
    """On a machine without the run's weights (only the archive), a decode not yet evaluated
    retrains the run (seeded) and checks its weights against the first training's digest; each
    result reaches the archive as soon as it is evaluated. Other weights are refused, never mixed."""
    import shutil

    out, args = bench_args
    archive = tmp_path / "archive"
    base = [
        *args,
        f"archive={archive}",
        f"proxy_scorer={out / 'scorers/proxy'}",
        f"gold_scorer={out / 'scorers/gold'}",
        'methods=["conditional"]',
        "conditional.checkpoints=[2]",
    ]
    one = 'sweeps.conditional=["sft.learning_rate=1e-3 contrast_guidance=[1.0]"]'
    two = 'sweeps.conditional=["sft.learning_rate=1e-3 contrast_guidance=[1.0,2.0]"]'  # one scale more
    assert cli([*base, f"output_dir={tmp_path / 'first'}", one]) == 0
    record = archive / "seed_0/conditional/sft.learning_rate=1e-3/checkpoints.json"
    assert json.loads(record.read_text())[0]["extra"]["weights_digest"]
    before = record.read_bytes()
    spare = tmp_path / "spare"
    shutil.copytree(archive, spare)
    shutil.rmtree(tmp_path / "first")  # the machine that trained it is gone, with the weights

    fresh = tmp_path / "fresh"  # another machine: the archive only
    assert cli([*base, f"output_dir={fresh}", two]) == 0
    assert (fresh / "seed_0/conditional/sft.learning_rate=1e-3/step_2/model.safetensors").exists()  # trained again here
    new = [
        r
        for r in _rows(archive)
        if r["setting"] == "sft.learning_rate=1e-3" and r["decode"] == "T=1 anchored g=2 vs mirror"
    ]
    assert len(new) == 1 and record.read_bytes() == before  # the result archived; the run's record is the first
    first_cost = json.loads(before)[0]["wall_clock_s"]
    assert new[0]["cost/wall_clock_s"] == first_cost  # the method's cost is its first training's

    # a retraining that reaches other weights (here: a record tampered with) stops, naming the run
    rows = json.loads((spare / "seed_0/conditional/sft.learning_rate=1e-3/checkpoints.json").read_text())
    rows[0]["extra"]["weights_digest"] = "0" * 16
    (spare / "seed_0/conditional/sft.learning_rate=1e-3/checkpoints.json").write_text(json.dumps(rows))
    assert cli([*base, f"output_dir={tmp_path / 'other'}", f"archive={spare}", two]) == 2


def test_an_archive_that_disagrees_with_out_is_never_mixed(tmp_path, capsys):
    from condtune.bench import archive

    a, b = tmp_path / "a", tmp_path / "b"
    for root, probe in ((a, [0.1]), (b, [0.9])):
        (root / "samples").mkdir(parents=True)
        (root / "run_identity.json").write_text(json.dumps({"prompts": {}, "rater_probe": {"proxy": probe}}))
    with pytest.raises(archive.ConfigError, match="run_identity.json"):
        archive.pull(a, b)
    assert json.loads((b / "run_identity.json").read_text())["rater_probe"]["proxy"] == [0.9]


def test_a_sweep_typo_stops_before_anything_runs(bench_args, tmp_path, capsys):
    _, args = bench_args
    assert cli([*args, f"output_dir={tmp_path / 'x'}", "sweeps.ppo=[kl_cof=0.1]"]) == 2
    assert "kl_cof" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_results_of_another_rater_are_never_pooled(bench_args, bench_run, capsys):
    """A rerun whose proxy scores the probe texts differently from the run's record is refused:
    its results would pool with results judged by another rater."""
    out, args = bench_args
    before, ident = (out / "results.jsonl").read_text(), json.loads((out / "run_identity.json").read_text())
    shifted = {
        **ident,
        "rater_probe": {**ident["rater_probe"], "proxy": [x + 0.5 for x in ident["rater_probe"]["proxy"]]},
    }
    (out / "run_identity.json").write_text(json.dumps(shifted))
    try:
        assert cli(args) == 2
        assert "another proxy rater" in capsys.readouterr().err and (out / "results.jsonl").read_text() == before
    finally:
        (out / "run_identity.json").write_text(json.dumps(ident))


def test_changed_settings_never_resume_a_stale_run(bench_args, bench_run, capsys):
    """A finished run is reused only with the settings it was trained with; a changed one is a clear error."""
    out, args = bench_args
    assert cli([*args, "conditional.sft.learning_rate=0.5"]) == 2
    err = capsys.readouterr().err
    assert "seed_0/conditional/default holds another conditional run" in err and "sft" in err
    cli([*args, "conditional.guidance=[1.0,2.0]"])  # how a trained policy is sampled is not part of its run
    assert "holds another" not in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_tiny_config_end_to_end(tmp_path, tiny_lm, tiny_encoder):
    """condtune/configs/bench_tiny.yaml as shipped (both seeds, every method), only the model paths moved."""
    out = tmp_path / "bench_tiny"
    assert (
        cli(
            [
                "bench",
                "--config",
                "condtune/configs/bench_tiny.yaml",
                f"output_dir={out}",
                f"model={tiny_lm}",
                f"scorer.backbone={tiny_encoder}",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["protocol"]["seeds"] == [0, 1] and all(p["seeds"] == 2 for p in s["points"])
