"""How well a conditional policy's top-vs-bottom tag contrast ranks the base model's own samples:
the classifier that anchored guidance against the mirrored tag follows, measured without sampling.

For each answer y of a prompt x, the contrast is s(y) = log pi(y | top tag, x) - log pi(y | bottom
tag, x), the sum over y's tokens of the per-token shift that the vs-mirror decode adds to the base
model's logits at g = 1. A contrast that ranks the base's own answers as the proxy does is what the
decode needs. The answers are the benchmark's conditional_self corpus: the base model's samples on
the *training* prompts (4 a prompt), scored by the proxy, so no choice made here looks at the
evaluation prompts.

    python research/contrast_quality.py runs/bench_sentiment/corpus/tagged_conditional_self_*.jsonl \
        "runs/bench_sentiment/seed_2/conditional/sft.tag_contrast=1 checkpoints=[60]/step_60" [more policies]

Prints per policy: Spearman(s, proxy) over all answers; the within-prompt Spearman (s and the proxy
each centred on the prompt's mean, what choosing among one prompt's continuations needs); the
within-prompt pairwise accuracy (pairs whose proxy differs by more than 0.5); the seconds taken.
With ``--gold DIR`` (the benchmark's gold rater, ``runs/bench_sentiment/scorers/gold``, reading the
answer as every rater does), also the within-prompt Spearman of s with gold, and first that of the
proxy itself with gold: how well the ranking that best-of-n follows agrees with the judge, the
bound that matters for a contrast trained to follow the proxy. ``--gold2 DIR`` (the n-gram rater,
``runs/bench_sentiment/scorers/gold2``) does the same with a rater of another family, which shares no
weights or features with the proxy: how much of the proxy's ranking an independent judge confirms.
Writes nothing.

Noise: three trainings of one setting that differ only in their seed gave +0.523, +0.553 and +0.591
within prompts (docs/benchmarks.md §3), so compare settings over several training seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from condtune.generate import ConditionalPolicy
from condtune.kl import response_logits


@torch.no_grad()
def answer_logprobs(policy: ConditionalPolicy, prompts: list[str], answers: list[list[int]], batch: int) -> np.ndarray:
    """[N] log-likelihood of each answer's token ids after its (tagged) prompt text."""
    tok, model = policy.tokenizer, policy.model.eval()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = []
    for i in range(0, len(prompts), batch):
        contexts = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[i : i + batch]]
        rows = response_logits(model, contexts, answers[i : i + batch], pad_id=pad)
        out += [
            float(F.log_softmax(lg, -1).gather(-1, torch.tensor(a)[:, None]).sum())
            for lg, a in zip(rows, answers[i : i + batch])
        ]
    return np.array(out)


def contrast_scores(policy: ConditionalPolicy, df: pd.DataFrame, batch: int) -> np.ndarray:
    k = policy.card.binning.k
    answers = [list(map(int, a)) for a in df["completion_ids"]]
    top = answer_logprobs(policy, [policy.tagged(p, bin_index=k - 1) for p in df["prompt"]], answers, batch)
    bottom = answer_logprobs(policy, [policy.tagged(p, bin_index=0) for p in df["prompt"]], answers, batch)
    return top - bottom


def within_spearman(df: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> float:
    """Spearman of ``a`` and ``b``, each centred on its prompt's mean."""
    d = pd.DataFrame({"prompt": df["prompt"].to_numpy(), "a": a, "b": b})
    centred = d.groupby("prompt")[["a", "b"]].transform(lambda v: v - v.mean())
    return float(spearmanr(centred["a"], centred["b"]).statistic)


def quality(df: pd.DataFrame, s: np.ndarray, *, min_gap: float = 0.5) -> dict[str, float]:
    """Spearman of the contrast ``s`` with the proxy, overall and within prompts, and the
    within-prompt pairwise accuracy over pairs whose proxy differs by more than ``min_gap``."""
    d = df.assign(s=s)
    right = total = 0
    for _, g in d.groupby("prompt"):
        sv, pv = g["s"].to_numpy(), g["proxy"].to_numpy()
        ds, dp = sv[:, None] - sv[None, :], pv[:, None] - pv[None, :]
        keep = dp > min_gap
        right, total = right + int((ds[keep] > 0).sum()), total + int(keep.sum())
    return {
        "spearman": float(spearmanr(d["s"], d["proxy"]).statistic),
        "spearman_within": within_spearman(d, d["s"].to_numpy(), d["proxy"].to_numpy()),
        "pair_accuracy": right / max(total, 1),
        "pairs": total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", help="the conditional_self corpus: base samples with completion_ids and proxy")
    ap.add_argument("policies", nargs="+", help="conditional policy folders")
    ap.add_argument("--n-prompts", type=int, default=256, help="the first N prompts of the corpus (all their answers)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gold", help="a scorer folder (the benchmark's gold rater) to rank the answers by as well")
    ap.add_argument("--gold2", help="the benchmark's n-gram rater folder (another family) to rank the answers by")
    ap.add_argument("--task", default="vader_movie", help="the benchmark task: what its raters read of an answer")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    df = pd.read_json(a.corpus, lines=True)
    keep = df["prompt"].drop_duplicates().iloc[: a.n_prompts]
    df = df[df["prompt"].isin(keep)].reset_index(drop=True)
    print(f"{len(df)} base answers on {len(keep)} training prompts")
    judges: dict[str, np.ndarray] = {}
    if a.gold or a.gold2:
        from condtune.bench.task import load_task

        task = load_task(a.task)
        texts = [task.review_text(p, c) for p, c in zip(df["prompt"], df["completion"])]
    if a.gold:
        from condtune.scorer import Scorer

        judges["gold"] = Scorer.load(a.gold).score(texts)
    if a.gold2:
        from condtune.ngram_scorer import NgramScorer

        judges["gold2"] = NgramScorer.load(a.gold2).score(texts)
    for name, scores in judges.items():
        bound = within_spearman(df, df["proxy"].to_numpy(), scores)
        print(f"within-prompt Spearman of the proxy with {name}: {bound:+.3f}")
    print(
        "| policy | Spearman(s, proxy) | within prompts | pair accuracy | "
        + "".join(f"within prompts, vs {n} | " for n in judges)
        + "seconds |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(judges) + "---:|")
    for path in a.policies:
        t0 = time.time()
        s = contrast_scores(ConditionalPolicy.load(path), df, a.batch)
        q = quality(df, s)
        vs = "".join(f"{within_spearman(df, s, scores):+.3f} | " for scores in judges.values())
        print(
            f"| {path} | {q['spearman']:+.3f} | {q['spearman_within']:+.3f} | "
            f"{q['pair_accuracy']:.3f} ({q['pairs']}) | {vs}{time.time() - t0:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
