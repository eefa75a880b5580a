"""The shared evaluation: every checkpoint of every method is sampled on the same held-out
prompts, ``eval_n`` samples per prompt (per requested target for a conditioned policy), at each
evaluated temperature (and guidance scale), and every sample gets

* its exact KL to pi_ref: of the distribution it was actually drawn from (temperature, top-p,
  guidance applied) against the base policy at temperature 1 on the plain prompt, in fp32
  (:func:`condtune.kl.sampled_token_kl`); best-of-n gets its analytic bound instead;
* the proxy's, the gold rater's and gold2's score of what the policy wrote.

The per-sample tables are what the report bootstraps (by prompt, pooled over seeds).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from condtune.bench import metrics as BM
from condtune.bench.methods import BenchContext
from condtune.bench.settings import MIRROR, UNTAGGED
from condtune.checkpointing import Checkpoint
from condtune.controllability import summarise
from condtune.generate import ConditionalPolicy
from condtune.kl import best_of_n_kl, sampled_kl
from condtune.modeling import load_causal_lm
from condtune.sampling import SamplingConfig, sample
from condtune.tables import read_table


class Decode(NamedTuple):
    """How a checkpoint is sampled in evaluation."""

    temperature: float
    guidance: float = 1.0
    anchored: bool = False
    contrast: str = UNTAGGED


def decode_name(temperature: float, guidance: float = 1.0, anchored: bool = False, contrast: str = UNTAGGED) -> str:
    vs = " vs mirror" if contrast == MIRROR else ""
    if anchored:
        return f"T={temperature:g} anchored g={guidance:g}{vs}"
    return f"T={temperature:g}" + (f" g={guidance:g}{vs}" if guidance != 1.0 else "")


def decodes(ctx: BenchContext, ck: Checkpoint, settings) -> list[Decode]:
    """The decodes a checkpoint is evaluated at: classifier-free guidance scales, and scales of
    guidance anchored on the base policy against the untagged prompt and against the mirrored
    target's tag (conditional policies), as its run's ``settings`` give them (a sweep entry may set
    its own)."""
    if ck.samples:  # best-of-n picks were drawn at the sampling temperature
        return [Decode(ctx.cfg.sampling.temperature)]
    c = settings
    gs = (
        [(g, False, UNTAGGED) for g in c.guidance]
        + [(g, True, UNTAGGED) for g in c.anchored_guidance]
        + [(g, True, MIRROR) for g in c.contrast_guidance]
        if ck.conditional
        else [(1.0, False, UNTAGGED)]
    )
    return [Decode(t, g, a, m) for t in ctx.cfg.eval_temperatures for g, a, m in gs]


def rate(ctx: BenchContext, df: pd.DataFrame) -> pd.DataFrame:
    """Add one column per rater (proxy, gold, gold2) scoring what the policy wrote."""
    texts = [ctx.task.review_text(p, t) for p, t in zip(df["prompt"], df["text"])]
    return df.assign(**{name: r.score(texts) for name, r in ctx.raters.judged().items()})


def measure(
    ctx: BenchContext,
    model,
    tok,
    *,
    inputs: list[str],
    uncond: list[str] | None,
    temperature: float,
    guidance: float,
    seed: int,
    desc: str = "eval",
    anchored: bool = False,
) -> pd.DataFrame:
    """``eval_n`` samples per evaluation prompt from ``model`` reading ``inputs`` (the prompts, maybe
    tagged), with their exact KL against the reference on the plain prompts; ``anchored``: guidance
    anchored on the reference itself (it reads the plain prompts)."""
    plain, n = ctx.prompts.eval, ctx.cfg.eval_n
    s_cfg = replace(ctx.cfg.sampling, temperature=temperature)
    s = sample(
        model,
        tok,
        inputs,
        n=n,
        cfg=s_cfg,
        seed=seed,
        desc=desc,
        uncond_prompts=uncond,
        guidance=guidance,
        anchor_model=ctx.ref if anchored else None,
        anchor_prompts=plain if anchored else None,
    )
    idx = [i for i in range(len(plain)) for _ in range(n)]
    ids = [r for row in s.response_ids for r in row]
    kl = exact_kl(
        ctx, model, tok, idx, ids, inputs=inputs, uncond=uncond, s_cfg=s_cfg, guidance=guidance, anchored=anchored
    )
    df = pd.DataFrame(
        {
            "prompt_id": idx,
            "prompt": [plain[i] for i in idx],
            "text": [t for row in s.texts for t in row],
            "n_tokens": [len(r) for r in ids],
            "kl": kl,
        }
    )
    return rate(ctx, df)


def exact_kl(
    ctx: BenchContext,
    model,
    tok,
    idx: list[int],
    ids: list[list[int]],
    *,
    inputs: list[str],
    uncond: list[str] | None,
    s_cfg: SamplingConfig,
    guidance: float,
    anchored: bool,
) -> list[float]:
    """Each sample's exact KL (:func:`condtune.kl.sampled_kl`): the response ``ids[j]``, drawn after the
    evaluation prompt ``idx[j]`` (``inputs``, ``uncond``: what the policy read) with the sampling
    settings ``s_cfg``, against the reference reading the plain prompt."""

    def enc(texts: list[str], t) -> list[list[int]]:
        return [t(texts[i], add_special_tokens=False)["input_ids"] for i in idx]

    return sampled_kl(
        model,
        ctx.ref,
        contexts=enc(inputs, tok),
        ref_contexts=enc(ctx.prompts.eval, ctx.ref_tok),
        responses=ids,
        pad_id=tok.pad_token_id,
        temperature=s_cfg.temperature,
        top_p=s_cfg.top_p,
        guidance=guidance,
        uncond_contexts=enc(uncond, tok) if uncond else None,
        batch_size=ctx.cfg.kl_batch_size,
        anchored=anchored,
    )


def evaluate(
    ctx: BenchContext,
    ck: Checkpoint,
    *,
    seed: int,
    temperature: float,
    guidance: float,
    anchored: bool = False,
    contrast: str = UNTAGGED,
) -> tuple[dict, pd.DataFrame]:
    """The shared evaluation of one checkpoint at one decode: (result row, per-sample table)."""
    row = result_row(ck, seed=seed, temperature=temperature, guidance=guidance, anchored=anchored, contrast=contrast)
    if ck.samples:  # best-of-n: picks already made; its KL is the analytic bound
        df = read_table(ck.samples).rename(columns={"proxy": "proxy_at_pick"})
        df["prompt_id"] = df["prompt"].map({p: i for i, p in enumerate(ctx.prompts.eval)})
        df = rate(ctx, df.assign(kl=best_of_n_kl(ck.step)))
        return {**row, **BM.text_stats(df), "kl_kind": "best_of_n_analytic", "samples_per_output": ck.step}, df
    if not ck.conditional:
        model, tok = load_causal_lm(ck.path)
        df = measure(
            ctx,
            model,
            tok,
            inputs=ctx.prompts.eval,
            uncond=None,
            temperature=temperature,
            guidance=guidance,
            seed=seed,
            desc=f"eval {ck.method} {ck.name}",
        )
        return {**row, **BM.text_stats(df)}, df
    df = measure_targets(
        ctx, ck, seed=seed, temperature=temperature, guidance=guidance, anchored=anchored, contrast=contrast
    )
    per = [{"requested": r, **BM.text_stats(g)} for r, g in df.groupby("requested")]
    summ = summarise(df, "gold")
    row.update(
        {
            **per[-1],
            "targets": per,
            BM.COND_SPEARMAN_GOLD: summ["spearman"],
            BM.COND_MAE_GOLD: summ["mae"],
            BM.COND_MONOTONE: summ["monotone"],
        }
    )
    row.pop("requested")
    return row, df


def result_row(
    ck: Checkpoint, *, seed: int, temperature: float, guidance: float, anchored: bool, contrast: str
) -> dict:
    """A checkpoint's result row at one decode, before its samples' statistics: what was evaluated and
    what its training cost."""
    return {
        "method": ck.method,
        "setting": ck.setting,
        "seed": seed,
        "checkpoint": ck.name,
        "step": ck.step,
        "decode": decode_name(temperature, guidance, anchored, contrast),
        "temperature": temperature,
        "guidance": guidance,
        "anchored": anchored,
        "contrast": contrast,
        BM.WALL: ck.wall_clock_s,
        BM.TOKENS: ck.generated_tokens,
        BM.CALLS: ck.scorer_calls,
        "kl_kind": "exact_token_level",
        "samples_per_output": 1,
    }


def measure_targets(
    ctx: BenchContext, ck: Checkpoint, *, seed: int, temperature: float, guidance: float, anchored: bool, contrast: str
) -> pd.DataFrame:
    """A conditional checkpoint's samples (:func:`measure`) at each target, its bins' centres, with the
    target as ``requested``; guided against the untagged prompt, or the mirrored target's tag."""
    policy = ConditionalPolicy.load(ck.path)
    frames = []
    centers = policy.card.binning.centers
    for t_i, target in enumerate(centers):
        inputs = [policy.tagged(p, score=float(target)) for p in ctx.prompts.eval]
        if contrast == MIRROR:
            uncond = [policy.tagged(p, bin_index=len(centers) - 1 - t_i) for p in ctx.prompts.eval]
        else:
            uncond = [policy.tagged(p) for p in ctx.prompts.eval] if guidance != 1.0 or anchored else None
        df = measure(
            ctx,
            policy.model,
            policy.tokenizer,
            inputs=inputs,
            uncond=uncond,
            temperature=temperature,
            guidance=guidance,
            seed=seed * 1000 + t_i,
            desc=f"eval {ck.method} {ck.name} target {target:+.2f}",
            anchored=anchored,
        )
        frames.append(df.assign(requested=float(target)))
    return pd.concat(frames, ignore_index=True)


def data_ceiling(ctx: BenchContext, method: str, corpus: pd.DataFrame, *, card) -> tuple[dict, pd.DataFrame]:
    """A conditional method's data's own controllability under the gold raters, measured as the
    policy is: requested = the median of the bin the proxy puts a text in, achieved = the gold
    score of what was written after a neutral prompt.

    ``conditional``: held-out human texts that start with a neutral opening, the rest of each text
    being its 'completion'; ``conditional_self``: the base-policy samples it trains on, in the bins
    it trains them in."""
    if method == "conditional":
        df = ctx.task.continuations(ctx.heldout_items["completion"], ctx.cfg.opening_words).rename(
            columns={"completion": "text"}
        )
        bins = card.binning.assign(ctx.reward.score_pairs(df["prompt"].tolist(), df["text"].tolist())).astype(int)
        source = f"held-out human texts with a neutral {ctx.cfg.opening_words}-word opening, their continuation"
    else:
        df, bins = (
            corpus[["prompt", "completion"]].rename(columns={"completion": "text"}),
            corpus["score_bin"].to_numpy(int),
        )
        source = "the base-policy samples it trains on, in its bins"
    df = rate(ctx, df.assign(requested=np.asarray(card.binning.centers)[bins], prompt_id=np.arange(len(df))))
    out = {"method": method, "source": source, "n_texts": len(df)}
    for g in ("gold", "gold2"):
        if g in df:
            s = summarise(df, g)
            out.update(
                {
                    f"spearman_{g}": s["spearman"],
                    f"mae_{g}": s["mae"],
                    f"means_{g}": [p["mean"] for p in s["per_target"]],
                    f"monotone_{g}": s["monotone"],
                }
            )
            out["requested"], out["n_per_bin"] = (
                [p["requested"] for p in s["per_target"]],
                [p["n"] for p in s["per_target"]],
            )
    return out, df
