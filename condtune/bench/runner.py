"""The benchmark's orchestration: build the shared context once, then for every seed, method and
setting of its sweep train one run (or reuse it), evaluate each checkpoint at each decode not yet
in the results store, and free the disk when a run is fully evaluated."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from condtune.bench import archive, store
from condtune.bench.evaluation import data_ceiling, decode_name, decodes, evaluate
from condtune.bench.methods import BenchContext, finish_run, make_run, run_method, tagged_corpus
from condtune.bench.raters import build_raters
from condtune.bench.settings import BenchConfig, variants
from condtune.bench.task import load_task, prompt_sets
from condtune.config import ConfigError
from condtune.data import write_table
from condtune.io import read_json, write_json

log = logging.getLogger("condtune.bench")


def base_policy_dir(model: str, out: Path) -> str:
    """The base policy as a directory (trl rebuilds references from ``_name_or_path``)."""
    from condtune.modeling import model_dir

    return model_dir(model, out / "base")


def build_context(cfg: BenchConfig) -> BenchContext:
    from condtune.assets import fetch_all
    from condtune.modeling import load_causal_lm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fetch_all()
    task = load_task(cfg.task)
    base_dir = base_policy_dir(cfg.model, out)
    raters = build_raters(cfg, task, out)
    train, held = task.split(cfg.max_train_items)
    prompts = prompt_sets(
        task,
        n_train=cfg.n_train_prompts,
        n_eval=cfg.n_eval_prompts,
        words=cfg.opening_words,
        max_train_items=cfg.max_train_items,
    )
    check_same_run(
        out,
        prompts._asdict(),
        {name: r.score(held["completion"].tolist()[:256]) for name, r in raters.judged().items()},
    )
    write_json(out / "prompts.json", prompts._asdict())
    ref, ref_tok = load_causal_lm(base_dir)
    return BenchContext(
        cfg=cfg,
        task=task,
        out=out,
        base_dir=base_dir,
        raters=raters,
        train_items=train,
        heldout_items=held,
        prompts=prompts,
        ref=ref,
        ref_tok=ref_tok,
    )


def check_same_run(out: Path, prompts: dict, probe: dict, atol: float = 0.02) -> None:
    """Results in ``out`` are pooled only with results of the same protocol: the same prompts and
    raters that score a fixed probe (256 held-out texts) the same (within ``atol``: a retrained
    scorer may differ in the last digits). The first run records them in ``run_identity.json``."""
    path = out / "run_identity.json"
    now = {"prompts": prompts, "rater_probe": {k: [round(float(x), 4) for x in v] for k, v in probe.items()}}
    if not path.exists():
        write_json(path, now)
        return
    old = read_json(path)
    if old["prompts"] != now["prompts"]:
        raise ConfigError(
            f"{out} holds results made with other prompts (task or prompt settings changed); "
            "use another out= or delete it"
        )
    for name, scores in now["rater_probe"].items():
        before = old["rater_probe"].get(name)
        if before is None or len(before) != len(scores) or max(abs(a - b) for a, b in zip(before, scores)) > atol:
            raise ConfigError(
                f"{out} holds results judged by another {name} rater (its scores of the probe texts differ); "
                "use another out= or delete it"
            )


def ceiling_path(out: Path, method: str) -> Path:
    return Path(out) / f"ceiling_{method}.json"


def ceiling(ctx: BenchContext, method: str) -> dict:
    """A conditional method's data's own controllability (cached), with its texts in samples/."""
    path = ceiling_path(ctx.out, method)
    if not path.exists():
        corpus, card, cost = tagged_corpus(ctx, method, ctx.cfg.conditional)
        out, df = data_ceiling(ctx, method, corpus, card=card)
        out["between_prompt_variance_share"] = cost.get("between_prompt_variance_share")
        write_table(df, ctx.out / "samples" / f"ceiling_{method}.jsonl")
        write_json(path, out)
    return read_json(path)


def run_all(ctx: BenchContext) -> None:
    """Train and evaluate every (seed, method, setting) not yet in the results store."""
    cfg = ctx.cfg
    jobs = [(seed, m, entry) for seed in cfg.seeds for m in cfg.methods for entry in variants(cfg, m)]
    t0, spent, worked = (
        time.time(),
        0.0,
        0,
    )  # time of the jobs that did work (resumed ones are skipped fast), for the estimate
    for j, (seed, method, entry) in enumerate(jobs, 1):
        done, t_job = store.done_keys(ctx.out), time.time()
        eta = f", ~{spent / worked * (len(jobs) - j + 1) / 60:.0f} min left" if worked else ""
        log.info(
            "[%d/%d] seed %d, %s [%s] (%.1f min so far%s)", j, len(jobs), seed, method, entry, (t_job - t0) / 60, eta
        )
        run = make_run(cfg, method, entry, seed=seed)
        ckpts = run_method(ctx, run)
        for ck in ckpts:
            for d in decodes(ctx, ck, run.settings):
                if (method, run.setting, seed, ck.name, decode_name(*d)) in done:
                    continue
                if ck.path and not Path(ck.path).exists():
                    raise ConfigError(
                        f"{ck.path}: this checkpoint's weights were deleted after its evaluation (keep_weights); to "
                        f"evaluate it at {decode_name(*d)}, delete {run.work(ctx.out)} and rerun to retrain"
                    )
                row, samples = evaluate(ctx, ck, seed=seed, **d._asdict())
                store.append_result(ctx.out, row, samples)
                log.info(
                    "  %s [%s] %s %s: gold %+.3f proxy %+.3f KL %.2f (%.0f s)",
                    method,
                    run.setting,
                    ck.name,
                    row["decode"],
                    row["reward/gold"],
                    row["reward/proxy"],
                    row["kl/exact"],
                    ck.wall_clock_s,
                )
        finish_run(ctx, run, ckpts)
        if cfg.archive:
            archive.push(ctx.out, cfg.archive)
        if time.time() - t_job > 10:
            spent, worked = spent + time.time() - t_job, worked + 1


def protocol(cfg: BenchConfig, ctx: BenchContext | None = None) -> dict:
    """The protocol block of summary.json: what every method shared."""
    p = {
        "task": cfg.task,
        "model": cfg.model,
        "n_eval_prompts": cfg.n_eval_prompts,
        "eval_n": cfg.eval_n,
        "seeds": list(cfg.seeds),
        "max_new_tokens": cfg.sampling.max_new_tokens,
        "temperature": cfg.sampling.temperature,
        "top_p": cfg.sampling.top_p,
        "eval_temperatures": list(cfg.eval_temperatures),
        "kl": "exact",
        "n_boot": cfg.n_boot,
        "intervals": "95% percentile bootstrap, resampling prompts, pooled over seeds",
    }
    if ctx is not None:
        p["raters"] = {
            name: {
                "heldout_pearson": (r.meta.metrics or {}).get("pearson"),
                "trained_on": getattr(r.meta, "trained_on", None),
            }
            for name, r in ctx.raters.judged().items()
        }
    return p
