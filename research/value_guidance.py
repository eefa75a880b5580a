"""Value-guided decoding with a linear score probe on the frozen base model: is a better ranker of
the base's own answers than the tag contrast a better decode?

The probe: a ridge regression of the proxy's score of a text on the mean, over the answer's tokens,
of the base model's residual stream after its first ``--layer`` layers. It is fit on the benchmark's
relabelled human texts (the recipe's own training rows, so no sampling is needed), in a couple of
minutes and with no fine-tuning. Its reward for one token is w . h_L(prefix, token), so the sum
over an answer's tokens is the probe's score of the answer (times its length), as the tag
contrast's per-token shifts sum to the contrast.

1. ``--rank CORPUS`` ranks the base model's answers of the conditional_self corpus (the first 256
   training prompts, 4 answers each), within prompts, as ``contrast_quality.py`` ranks a policy's
   contrast (the recipe's: +0.60; the proxy against gold: +0.99).
2. The decode, per generated token: the base's log-probs lp; its top ``--k`` tokens; each one's
   reward r, from a forward of the k candidates through the first L layers on the prefix's KV
   cache; the token is sampled from log_softmax(lp + g (r - r_bar)) on those k tokens, r_bar
   being the base-weighted mean of their rewards (every other token keeps lp). The KL of each
   step's distribution to the base is exact, and a sample's KL is its sum over the sampled
   positions, the measure of the benchmark.

It samples on 64 of the run's *training* prompts × eval_n (the prompts of ``contrast_guidance.py``,
with its sampling seed), and prints the mean gold, gold2, proxy and KL with 95% intervals over
prompts. Writes nothing.

    python research/value_guidance.py runs/bench_sentiment --g 0 0.5 1 2 \
        --rank runs/bench_sentiment/corpus/tagged_conditional_self_k5_text_f97d40af71.jsonl
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from condtune import config as C
from condtune.bench.evaluation import rate
from condtune.bench.runner import build_context
from condtune.bench.settings import BenchConfig
from condtune.bench.stats import mean_ci
from condtune.sft_rows import encode


def run_layers(model, h: torch.Tensor, *, mask4d: torch.Tensor, pos: torch.Tensor, n_layers: int, cache=None):
    """The residual stream after the first ``n_layers`` decoder layers of a Llama-style model, from
    the embeddings ``h`` [B, T, H], with an explicit boolean mask [B, 1, T, past + T]."""
    inner = model.model
    pe = inner.rotary_emb(h, position_ids=pos)
    for layer in inner.layers[:n_layers]:
        h = layer(
            h, attention_mask=mask4d, position_embeddings=pe, position_ids=pos, cache=cache, use_cache=cache is not None
        )
        h = h[0] if isinstance(h, tuple) else h
    return h


def candidate_states(model, cand: torch.Tensor, *, mask: torch.Tensor, last: torch.Tensor, cache, n_layers: int):
    """[B, k, H]: the residual stream after ``n_layers`` of each candidate next token ``cand`` [B, k],
    read on the prefix's KV ``cache`` (``mask`` its 2-D attention mask, ``last`` each row's last
    position): every candidate sees the prefix and itself, at the next position. The candidates are
    dropped from the cache again, so the generation goes on as if they had never been read."""
    B, k = cand.shape
    mask4d = torch.cat(
        [mask.bool()[:, None, None, :].expand(B, 1, k, -1), torch.eye(k, dtype=torch.bool).expand(B, 1, k, k)], -1
    )
    pos = (last + 1)[:, None].expand(B, k)
    h = run_layers(model, model.model.embed_tokens(cand), mask4d=mask4d, pos=pos, n_layers=n_layers, cache=cache)
    for layer in cache.layers[:n_layers]:
        layer.crop(-k)
    return h


@torch.no_grad()
def answer_features(model, tok, prompts: list[str], answers: list[list[int]], n_layers: int, batch: int = 32):
    """[N, H]: each answer's residual stream after ``n_layers``, averaged over its tokens."""
    out = []
    for i in range(0, len(prompts), batch):
        ctx = [encode(tok, p) for p in prompts[i : i + batch]]
        seqs = [c + a for c, a in zip(ctx, answers[i : i + batch])]
        T = max(map(len, seqs))
        ids = torch.zeros((len(seqs), T), dtype=torch.long)
        real = torch.zeros((len(seqs), T), dtype=torch.bool)
        for j, s in enumerate(seqs):
            ids[j, : len(s)], real[j, : len(s)] = torch.tensor(s), True
        mask4d = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & real[:, None, None, :]
        pos = torch.arange(T)[None].expand(len(seqs), T)
        h = run_layers(model, model.model.embed_tokens(ids), mask4d=mask4d, pos=pos, n_layers=n_layers)
        out += [h[j, len(c) : len(s)].mean(0).numpy() for j, (c, s) in enumerate(zip(ctx, seqs))]
    return np.stack(out)


class Probe:
    """r(h) = w . (h - mu) / sd: a token's reward from its residual stream (the ridge's intercept,
    the same for every token, is left out)."""

    def __init__(self, ridge: Ridge, mu: np.ndarray, sd: np.ndarray):
        w = ridge.coef_ / sd
        self.w, self.c = torch.tensor(w, dtype=torch.float32), float(w @ mu)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        return h.float() @ self.w - self.c


@torch.no_grad()
def value_sample(
    model,
    tok,
    prompts,
    probe: Probe,
    *,
    n_layers: int,
    g: float,
    k: int,
    max_new: int,
    n: int,
    seed: int,
    batch: int = 16,
):
    """``n`` samples a prompt (prompts repeated, left padded): (texts, per-sample exact KL to the base)."""
    torch.manual_seed(seed)
    tok.padding_side = "left"
    eos, pad = tok.eos_token_id, tok.pad_token_id
    flat = [p for p in prompts for _ in range(n)]
    texts, kls = [], []
    for s in range(0, len(flat), batch):
        enc = tok(flat[s : s + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        mask = enc["attention_mask"]
        B = mask.shape[0]
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        out = model(input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        logits, last = out.logits[:, -1].float(), pos[:, -1]
        done, kl, gen = torch.zeros(B, dtype=torch.bool), torch.zeros(B), []
        for _ in range(max_new):
            lp = lq = F.log_softmax(logits, -1)
            if g != 0:
                top, cand = lp.topk(k, dim=-1)
                r = probe(candidate_states(model, cand, mask=mask, last=last, cache=cache, n_layers=n_layers))
                r = r - (F.softmax(top, -1) * r).sum(-1, keepdim=True)
                lq = F.log_softmax(lp.scatter_add(-1, cand, g * r), -1)
            kl += torch.where(done, 0.0, (lq.exp() * (lq - lp)).sum(-1))
            a = torch.where(done, pad, torch.multinomial(lq.exp(), 1)[:, 0])
            gen.append(a)
            done = done | (a == eos)
            if done.all():
                break
            mask, last = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype)], 1), last + 1
            logits = (
                model(
                    input_ids=a[:, None], attention_mask=mask, position_ids=last[:, None], cache=cache, use_cache=True
                )
                .logits[:, -1]
                .float()
            )
        for row in torch.stack(gen, 1).tolist():
            row = row[: row.index(eos) + 1] if eos in row else row
            texts.append(tok.decode(row, skip_special_tokens=True).strip())
        kls += kl.tolist()
    return texts, np.array(kls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the benchmark run's folder (its config.json, raters, prompts and corpus/)")
    ap.add_argument("--layer", type=int, default=16, help="the probe reads the residual stream after this many layers")
    ap.add_argument("--alpha", type=float, default=1e4, help="the ridge's penalty (features standardised)")
    ap.add_argument("--g", type=float, nargs="+", default=[0.0, 1.0], help="guidance scales (0: the base itself)")
    ap.add_argument("--k", type=int, default=32, help="candidate tokens a step")
    ap.add_argument("--n-prompts", type=int, default=64)
    ap.add_argument("--rank", help="the conditional_self corpus: rank its first 256 prompts' answers by the probe")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = C.parse(BenchConfig, ["--config", str(Path(a.out) / "config.json")])
    ctx = build_context(replace(cfg, output_dir=a.out))
    model, tok = ctx.ref.eval(), ctx.ref_tok
    human = pd.read_json(next((Path(a.out) / "corpus").glob("tagged_conditional_k*.jsonl")), lines=True)
    t0 = time.time()
    ids = [encode(tok, " " + c)[:40] for c in human["completion"]]
    X = answer_features(model, tok, human["prompt"].tolist(), ids, a.layer)
    mu, sd = X.mean(0), X.std(0) + 1e-6
    probe = Probe(Ridge(alpha=a.alpha).fit((X - mu) / sd, human["score"].to_numpy()), mu, sd)
    print(f"probe (layer {a.layer}, alpha {a.alpha:g}) fit on {len(X)} human texts in {time.time() - t0:.0f} s")
    if a.rank:
        own = pd.read_json(a.rank, lines=True)
        own = own[own["prompt"].isin(own["prompt"].drop_duplicates().iloc[:256])].reset_index(drop=True)
        f = answer_features(
            model, tok, own["prompt"].tolist(), [list(map(int, x)) for x in own["completion_ids"]], a.layer
        )
        from contrast_quality import within_spearman  # its sibling script (run as a script, its folder is on the path)

        rho = within_spearman(own, probe(torch.tensor(f)).numpy(), own["proxy"].to_numpy())
        print(f"within-prompt Spearman with the proxy, {len(own)} base answers: {rho:+.3f}")
    plain, n = ctx.prompts.train[: a.n_prompts], cfg.eval_n
    for g in a.g:
        t0 = time.time()
        texts, kl = value_sample(
            model, tok, plain, probe, n_layers=a.layer, g=g, k=a.k, max_new=cfg.sampling.max_new_tokens, n=n, seed=4
        )
        sec = time.time() - t0
        ids = [i for i in range(len(plain)) for _ in range(n)]
        df = rate(ctx, pd.DataFrame({"prompt_id": ids, "prompt": [plain[i] for i in ids], "text": texts, "kl": kl}))
        cells = []
        for col in ("gold", "gold2", "proxy", "kl"):
            iv = mean_ci(df[col].to_numpy(), df["prompt_id"].to_numpy(), n_boot=cfg.n_boot)
            cells.append(f"{col} {iv.value:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}]")
        print(f"g={g:g} k={a.k}: " + ", ".join(cells) + f" ({sec:.0f} s sampling)", flush=True)
        print("   e.g. " + " | ".join(df["text"].head(3).tolist()), flush=True)


if __name__ == "__main__":
    main()
