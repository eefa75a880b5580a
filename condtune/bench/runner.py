"""The benchmark's orchestration: build the shared context once, then for every seed, method and
setting of its sweep train one run (or reuse it), evaluate each checkpoint at each decode not yet
in the results store, and free the disk when a run is fully evaluated."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from condtune.assets import fetch_all
from condtune.bench import archive, store
from condtune.bench.evaluation import data_ceiling, decode_name, decodes, evaluate
from condtune.bench.methods import BenchContext, Run, finish_run, make_run, run_method, tagged_corpus
from condtune.bench.raters import build_raters
from condtune.bench.settings import BenchConfig, variants
from condtune.bench.task import load_task, prompt_sets
from condtune.checkpointing import Checkpoint
from condtune.config import ConfigError
from condtune.io import atomic_path, read_json, write_json
from condtune.modeling import load_causal_lm, model_dir
from condtune.tables import write_table

log = logging.getLogger("condtune.bench")


def base_policy_dir(model: str, out: Path) -> str:
    """The base policy as a directory (trl rebuilds references from ``_name_or_path``)."""
    return model_dir(model, out / "base")


def build_context(cfg: BenchConfig) -> BenchContext:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fetch_all()
    task = load_task(cfg.task)
    base_dir = base_policy_dir(cfg.model, out)
    raters = build_raters(cfg, task, out)
    train, held = task.split(cfg.max_train_samples)
    prompts = prompt_sets(
        task,
        n_train=cfg.n_train_prompts,
        n_eval=cfg.n_eval_prompts,
        words=cfg.opening_words,
        max_train_items=cfg.max_train_samples,
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
            "use another output_dir= or delete it"
        )
    for name, scores in now["rater_probe"].items():
        before = old["rater_probe"].get(name)
        if before is None or len(before) != len(scores) or max(abs(a - b) for a, b in zip(before, scores)) > atol:
            raise ConfigError(
                f"{out} holds results judged by another {name} rater (its scores of the probe texts differ); "
                "use another output_dir= or delete it"
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
        todo = [
            (ck, d)
            for ck in ckpts
            for d in decodes(ctx, ck, run.settings)
            if (method, run.setting, seed, ck.name, decode_name(*d)) not in done
        ]
        if any(ck.path and not Path(ck.path).exists() for ck, _ in todo):
            ckpts = retrain(ctx, run, ckpts, len(todo))
            todo = [(next(c for c in ckpts if c.name == ck.name), d) for ck, d in todo]
        for ck, d in todo:
            row, samples = evaluate(ctx, ck, seed=seed, **d._asdict())
            store.append_result(ctx.out, row, samples)
            if cfg.archive:  # each result outlives the session, not only a finished run's
                archive.push(ctx.out, cfg.archive)
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


def retrain(ctx: BenchContext, run: Run, ckpts: list[Checkpoint], n_left: int) -> list[Checkpoint]:
    """Train a finished run again because its weights are gone (pruned after an evaluation, or left
    on the machine that trained it) and ``n_left`` decodes still need them. Training is seeded; the
    retrained weights must match the digests recorded at the first training, else the decodes would
    come from another policy under the run's name: that is an error. The run keeps its first
    records (their costs are the method's; a retraining is not), with the new weights' paths."""
    work = run.work(ctx.out)
    log.info(
        "%s [%s] seed %d: %d decodes left and its weights are gone: training it again (seeded, same settings)",
        run.method,
        run.setting,
        run.seed,
        n_left,
    )
    record = work / "checkpoints.json"
    first = record.read_bytes()
    record.unlink()
    (work / "snapshots.json").unlink(missing_ok=True)  # else the snapshots of the first training count as saved
    try:
        fresh = {c.name: c for c in run_method(ctx, run)}
    finally:
        with atomic_path(record, suffix=".json") as tmp:  # the first record stays the run's record
            tmp.write_bytes(first)
    for ck in ckpts:
        old, new = ck.extra.get("weights_digest"), fresh[ck.name].extra.get("weights_digest")
        if old is None:
            log.warning("%s %s: no weights digest from its first training; retrained weights unchecked", work, ck.name)
        elif old != new:
            raise ConfigError(
                f"{work}: retraining {ck.name} gave other weights (digest {new}, first training {old}), so its "
                "remaining decodes would not evaluate the same policy; evaluate them where it was trained, or "
                "start the run afresh under another output_dir="
            )
    return [replace(ck, path=fresh[ck.name].path) for ck in ckpts]


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
