"""The comparative benchmark: conditional SFT (condtune, on human texts and on the base policy's own
samples) vs PPO, RLOO, DPO and best-of-n, each baseline a frontier over its sweep.

    condtune bench --config bench_sentiment     # SmolLM2-135M + VADER movie reviews, 3 seeds
    condtune bench --config bench_dev           # the same protocol in ~45 min (one seed), to rank ideas
    condtune bench --config bench_amazon        # the second task: VADER product reviews
    condtune bench --config bench_tiny          # tiny models, a few minutes

Same base policy, proxy scorer (every method trains against it), held-out prompts (the header
alone and neutral openings) and generation settings for every method; two gold raters that are
not the proxy judge. For each method, setting, seed, checkpoint and decode it measures gold,
gold2 and proxy reward, the exact KL of what was sampled, distinct-2 and the cost; for a
conditioned policy also each requested target. The report gives 95% intervals (bootstrap over
prompts, pooled over seeds).

Outputs in ``output_dir/``: results.jsonl, samples/, summary.json (fixed schema), results.csv, table.md,
frontier.png, reliability.png. Rerunning the same command skips finished results and resumes
unfinished training; run it per method or seed (``methods=[ppo] seeds=[1]``) and report together.
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from condtune import config as C
from condtune.bench import archive, store
from condtune.bench import runner as R
from condtune.bench.methods import TRAINERS, make_run
from condtune.bench.report import write_report
from condtune.bench.settings import CEILING_METHODS, BenchConfig
from condtune.io import read_json, write_json
from condtune.outputs import claim_output

log = logging.getLogger("condtune.bench")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg = C.parse(BenchConfig, argv)
    check(cfg)
    marks = ("config.json", "protocol.json", "results.jsonl")
    claim_output(cfg, "output_dir", job="bench", argv=argv, what="a bench run", marks=marks, overwrite_setting=None)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t0, out = time.time(), Path(cfg.output_dir)
    if cfg.archive:  # results of earlier pieces, perhaps made on another machine
        archive.pull(cfg.archive, out)
    if not cfg.report_only:
        # build: base policy dir, proxy + gold raters, data split, prompts, reference model
        ctx = R.build_context(cfg)
        write_json(out / "config.json", C.to_dict(cfg))
        for m in CEILING_METHODS:
            if m in cfg.methods:
                R.ceiling(ctx, m)
        log.info(
            "bench: %s; methods %s x seeds %s; %d eval prompts x %d samples; results in %s",
            cfg.task,
            cfg.methods,
            cfg.seeds,
            len(ctx.prompts.eval),
            cfg.eval_n,
            out,
        )
        # run: train each (seed, method, setting) once, evaluate each checkpoint and decode not yet in results.jsonl
        R.run_all(ctx)
        write_json(out / "protocol.json", R.protocol(cfg, ctx))

    # report: every result in the store for the asked methods and seeds
    rows = [r for r in store.read_results(out) if r["method"] in cfg.methods and r["seed"] in cfg.seeds]
    if not rows:
        raise C.ConfigError(
            f"report: no results in {store.results_path(out)} for methods {cfg.methods}, seeds {cfg.seeds}"
        )
    ceilings = {
        m: read_json(R.ceiling_path(out, m))
        for m in CEILING_METHODS
        if R.ceiling_path(out, m).exists() and m in cfg.methods
    }
    protocol = read_json(out / "protocol.json") if (out / "protocol.json").exists() else R.protocol(cfg)
    protocol.update(seeds=sorted({r["seed"] for r in rows}))
    paths = write_report(out, rows, ceilings=ceilings, protocol=protocol, command="condtune bench " + shlex.join(argv))
    print((out / "table.md").read_text())
    print(f"bench done in {(time.time() - t0) / 60:.1f} min; outputs: " + ", ".join(str(p) for p in paths.values()))
    return 0


def check(cfg: BenchConfig) -> None:
    """Settings errors before anything runs, each naming the setting."""
    unknown = sorted(set(cfg.methods) - set(TRAINERS))
    if unknown:
        raise C.ConfigError(f"methods: unknown {unknown}; choose from {list(TRAINERS)}")
    for method, runs in cfg.sweeps.items():
        if method not in TRAINERS:
            raise C.ConfigError(f"sweeps: unknown method {method!r}; choose from {list(TRAINERS)}")

        for setting in runs:
            make_run(cfg, method, setting, seed=0)  # a typo in a sweep entry is a ConfigError naming it
    if cfg.n_eval_prompts < 1 or cfg.eval_n < 1:
        raise C.ConfigError(f"n_eval_prompts and eval_n must be >= 1 (got {cfg.n_eval_prompts}, {cfg.eval_n})")
    if any(t <= 0 for t in cfg.eval_temperatures) or cfg.sampling.temperature <= 0:
        raise C.ConfigError(
            "eval_temperatures and sampling.temperature must be > 0: the KL is of a sampling distribution"
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
