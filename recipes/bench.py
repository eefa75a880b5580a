"""The comparative benchmark: conditional SFT (condtune, on human texts and on the base policy's own
samples) vs PPO, RLOO, DPO and best-of-n.

    condtune bench --config configs/bench_sentiment.yaml     # SmolLM2-135M + VADER movie reviews
    condtune bench --config configs/bench_tiny.yaml          # tiny models, a few minutes

Same base policy, proxy scorer (every method trains against it), held-out prompts and
generation settings for every method; a gold rater that is not the proxy judges. For each
method, seed and checkpoint it measures gold and proxy reward, exact token-level KL(pi||pi_ref),
distinct-n, wall-clock, generated tokens and scorer calls; for the conditioned policy also
per requested target: achieved mean ± sd, Spearman(requested, achieved) and MAE.

Outputs in ``out/``: results.jsonl (one line per method, seed and checkpoint), results.csv,
targets.csv, table.md, frontier.png, reliability.png, samples/. Rerunning the same command
skips finished (method, seed, checkpoint) results and resumes unfinished training.
"""
from __future__ import annotations

import logging
import shlex
import sys
import time

import torch

from condtune import config as C
from condtune.bench import runner as R
from condtune.bench.report import write_report
from condtune.io import write_json

log = logging.getLogger("condtune.bench")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(R.BenchConfig, argv)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    unknown = sorted(set(cfg.methods) - set(R.TRAINERS))
    if unknown:
        raise C.ConfigError(f"methods: unknown {unknown}; choose from {list(R.TRAINERS)}")
    t0 = time.time()
    if cfg.report_only:
        return report_only(cfg, argv)

    # build: base policy dir, proxy + gold scorers, data split, prompts, reference model
    ctx = R.build_context(cfg)
    write_json(ctx.out / "config.json", C.to_dict(cfg))
    ceilings = {m: R.data_ceiling(ctx, m) for m in R.CONDITIONAL_METHODS if m in cfg.methods}
    log.info("bench: %d methods x %d seeds; %d eval prompts x %d samples; results in %s",
             len(cfg.methods), len(cfg.seeds), len(ctx.eval_prompts), cfg.eval_n, ctx.out)

    # run: train each (method, seed) once, then evaluate each checkpoint not yet in results.jsonl
    jobs = [(seed, method) for seed in cfg.seeds for method in cfg.methods]
    spent, worked = 0.0, 0  # time of the jobs that did work (resumed ones are skipped fast), for the estimate
    for j, (seed, method) in enumerate(jobs, 1):
        done, t_job = R.done_keys(ctx.out), time.time()
        eta = f", ~{spent / worked * (len(jobs) - j + 1) / 60:.0f} min left" if worked else ""
        log.info("[%d/%d] seed %d, %s (%.1f min so far%s)", j, len(jobs), seed, method, (t_job - t0) / 60, eta)
        ckpts = R.run_method(ctx, method, seed)
        for ck in ckpts:
            if (method, seed, ck.name) in done:
                continue
            row, samples = R.evaluate(ctx, ck, seed)
            R.append_result(ctx.out, row, samples)
            log.info("  %s %s: gold %+.3f proxy %+.3f KL %.2f (%.0f s)", method, ck.name, row["reward/gold"],
                     row["reward/proxy"], row["kl/exact"], ck.wall_clock_s)
        if time.time() - t_job > 10:
            spent, worked = spent + time.time() - t_job, worked + 1

    # report: CSV, markdown table, the two plots
    rows = [r for r in R.read_results(ctx.out) if r["method"] in cfg.methods and r["seed"] in cfg.seeds]
    paths = write_report(ctx.out, rows, ceilings, "condtune bench " + shlex.join(argv))
    print((ctx.out / "table.md").read_text())
    print(f"bench done in {(time.time() - t0) / 60:.1f} min; outputs: " + ", ".join(str(p) for p in paths.values()))
    return 0


def report_only(cfg: R.BenchConfig, argv: list[str]) -> int:
    """The report of every (method, seed, checkpoint) already in out/results.jsonl: runs made in
    pieces (e.g. some methods on more seeds than others) are reported together."""
    from pathlib import Path

    from condtune.io import read_json

    out = Path(cfg.out)
    rows = R.read_results(out)
    if not rows:
        raise C.ConfigError(f"report_only: no results in {R.results_path(out)}; run the benchmark first")
    ceilings = {m: read_json(R.ceiling_path(out, m)) for m in R.CONDITIONAL_METHODS if R.ceiling_path(out, m).exists()}
    paths = write_report(out, rows, ceilings, "condtune bench " + shlex.join(argv))
    print((out / "table.md").read_text())
    print("report written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
