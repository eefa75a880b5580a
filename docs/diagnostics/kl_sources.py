"""Where a conditional policy's KL(pi || pi_ref) comes from (docs/benchmarks.md, "Where the
conditional policies' KL comes from").

    python docs/diagnostics/kl_sources.py runs/bench_sentiment/seed_0/conditional/step_120 [more policy dirs]

For the base model reading a tag prefix, and for each policy with and without its tag, it samples
8 completions of 4 prompts at the benchmark's settings (24 tokens, temperature 1) and prints the
exact token-level KL against the base on the plain prompt, and the share of it at the EOS position.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from condtune.assets import resolve_model
from condtune.bench import metrics as BM
from condtune.generate import ConditionalPolicy
from condtune.modeling import load_causal_lm
from condtune.sampling import SamplingConfig

PROMPTS = ["Movie review: The movie", "Movie review: This is", "Movie review: The film", "Movie review: A thriller"]
SAMPLING = SamplingConfig(max_new_tokens=24, temperature=1.0, top_p=1.0, batch_size=16)


def kl_report(model, tok, ins: list[str], base, base_tok) -> str:
    r = BM.sample_ids(model, tok, ins, 8, SAMPLING, seed=0)
    pc = [tok(ins[i], add_special_tokens=False)["input_ids"] for i in r.prompt_index]
    rc = [base_tok(PROMPTS[i], add_special_tokens=False)["input_ids"] for i in r.prompt_index]
    per = BM.exact_token_kl(model, base, pc, rc, r.response_ids, tok.pad_token_id, SAMPLING.temperature)
    total = [float(k.sum()) for k in per]
    at_eos = [float(k[-1]) for k, ids in zip(per, r.response_ids) if ids and ids[-1] == tok.eos_token_id]
    return (f"KL {np.mean(total):.2f} nats/sample; {len(at_eos)}/{len(total)} end in EOS; "
            f"EOS position {sum(at_eos) / max(sum(total), 1e-9):.0%} of the KL; mean tokens {np.mean(r.n_tokens):.1f}")


def main(paths: list[str]) -> None:
    torch.set_num_threads(2)
    base, base_tok = load_causal_lm(resolve_model("smollm2-135m"))
    for path in paths:
        pol = ConditionalPolicy.load(path)
        tagged = [pol.tagged(p, score=float(pol.card.binning.centers[-1])) for p in PROMPTS]
        print(f"{path}\n  base reading the top tag: {kl_report(base, base_tok, tagged, base, base_tok)}")
        print(f"  policy, plain prompt:     {kl_report(pol.model, pol.tokenizer, PROMPTS, base, base_tok)}")
        print(f"  policy, top tag:          {kl_report(pol.model, pol.tokenizer, tagged, base, base_tok)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
