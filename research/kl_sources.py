"""Where a conditional policy's KL(pi || pi_ref) comes from (docs/benchmarks.md, "Where the
conditional policies' KL comes from").

    python research/kl_sources.py runs/bench_sentiment seed_0/conditional/default/step_120 [more policy dirs]

Uses the run's own evaluation prompts (``prompts.json``, drawn by condtune.bench.task.prompt_sets)
and sampling settings. For the base model reading a tag prefix, and for each policy with and
without its tag, it samples 4 completions of each prompt and prints the exact token-level KL of
what was sampled against the base on the plain prompt, and the share of it at the EOS position.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from condtune import config as C
from condtune.bench.settings import BenchConfig
from condtune.generate import ConditionalPolicy
from condtune.io import read_json
from condtune.kl import sampled_token_kl
from condtune.modeling import load_causal_lm
from condtune.sampling import sample


def kl_report(model, tok, ins: list[str], plain: list[str], base, base_tok, cfg: BenchConfig) -> str:
    s = sample(model, tok, ins, n=4, cfg=cfg.sampling, seed=0, progress=False)
    idx = [i for i in range(len(ins)) for _ in range(4)]
    ids = [r for row in s.response_ids for r in row]
    pc = [tok(ins[i], add_special_tokens=False)["input_ids"] for i in idx]
    rc = [base_tok(plain[i], add_special_tokens=False)["input_ids"] for i in idx]
    per = sampled_token_kl(
        model,
        base,
        contexts=pc,
        ref_contexts=rc,
        responses=ids,
        pad_id=tok.pad_token_id,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
    )
    total = [float(k.sum()) for k in per]
    at_eos = [float(k[-1]) for k, r in zip(per, ids) if r and r[-1] == tok.eos_token_id]
    return (
        f"KL {np.mean(total):.2f} nats/sample; {len(at_eos)}/{len(total)} end in EOS; "
        f"EOS position {sum(at_eos) / max(sum(total), 1e-9):.0%} of the KL; "
        f"mean tokens {np.mean([len(r) for r in ids]):.1f}"
    )


def main(run: str, paths: list[str]) -> None:
    torch.set_num_threads(2)
    cfg = C.parse(BenchConfig, ["--config", str(Path(run) / "config.json")])  # the run's own settings (JSON is YAML)
    plain = read_json(Path(run) / "prompts.json")["eval"]
    base, base_tok = load_causal_lm(cfg.model)
    for path in paths:
        pol = ConditionalPolicy.load(Path(run) / path)
        tagged = [pol.tagged(p, score=float(pol.card.binning.centers[-1])) for p in plain]
        print(f"{path}\n  base reading the top tag: {kl_report(base, base_tok, tagged, plain, base, base_tok, cfg)}")
        print(f"  policy, plain prompt:     {kl_report(pol.model, pol.tokenizer, plain, plain, base, base_tok, cfg)}")
        print(
            f"  policy, top tag:          {kl_report(pol.model, pol.tokenizer, tagged, plain, base, base_tok, cfg)}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
