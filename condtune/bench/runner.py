"""The benchmark runner: one shared setup, one ``train_<method>`` per method, one shared
evaluation over checkpoints, and a results file that makes reruns resume.

Setup (shared by every method and seed)
  * the base policy (saved to a directory: trl rebuilds references from ``_name_or_path``);
  * the proxy scorer (VADER ``half_a`` of each item's individual ratings) that every method
    trains against, and the gold rater (the disjoint ``half_b``) that only the evaluation sees;
  * VADER items of one domain, split as the scorers split them: training items feed SFT, DPO
    pairs and RL prompts; held-out items give the evaluation prompts (the header plus the first
    ``opening_words`` words of a held-out text) and the human ceiling;
  * the generation settings.

Every reward is a scorer's score of :func:`review_text`: the prompt's opening words plus the
completion (the header "Movie review:" is not part of the review).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from condtune.baselines.best_of_n import BestOfNSettings, train_best_of_n
from condtune.baselines.dpo import DPOSettings, build_pairs, train_dpo
from condtune.baselines.ppo import PPOConfig
from condtune.baselines.rloo import RLOOSettings, train_rloo
from condtune.bench import metrics as BM
from condtune.bench.checkpoints import Checkpoint, load_checkpoints, save_checkpoints
from condtune.data import VADER_PROMPTS, read_table, write_table
from condtune.io import read_json, read_jsonl, write_json
from condtune.metrics import mae, spearman
from condtune.policy import SFTSettings
from condtune.sampling import SamplingConfig
from condtune.scorer import OptimConfig, Scorer

log = logging.getLogger("condtune.bench")
METHODS = ("conditional", "conditional_self", "ppo", "rloo", "dpo", "best_of_n")
CONDITIONAL_METHODS = ("conditional", "conditional_self")  # evaluated per requested target


@dataclass
class ScorerSettings:
    backbone: str = "minilm"
    """encoder of the proxy scorer and of the gold rater"""
    max_items: int = 0
    """training items per scorer (0 = all of the domain's training items)"""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=2.0, lr=1e-4))
    """optimisation"""


@dataclass
class ConditionalSettings:
    k: int = 5
    """score bins (= requested targets, at the bins' medians)"""
    tag_style: str = "text"
    """'text' tags (plain words) or 'token' (new special tokens)"""
    sft: SFTSettings = field(default_factory=lambda: SFTSettings(batch_size=16, lr=1e-4, max_length=64, save_steps=20))
    """conditional SFT settings (max_steps is taken from checkpoints)"""
    checkpoints: list[int] = field(default_factory=lambda: [40, 80, 120])
    """steps at which the policy is evaluated (each a run annealed to that many steps, resumed from the previous)"""
    samples_per_prompt: int = 4
    """conditional_self only: base-policy samples per RL training prompt, relabelled by the proxy, as its SFT corpus"""


@dataclass
class BenchConfig:
    out: str = "runs/bench"
    """where everything goes; rerunning the same command resumes"""
    model: str = "smollm2-135m"
    """base policy (every method starts from it; it is also pi_ref)"""
    domain: str = "movie"
    """VADER domain"""
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    """methods to run: conditional (SFT on the relabelled human texts), conditional_self (SFT on the base policy's
    own relabelled samples), ppo, rloo, dpo, best_of_n"""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """training / sampling seeds (scorers and data splits are shared)"""
    proxy_scorer: str = ""
    """existing proxy scorer dir ('' = train one on half_a of the ratings)"""
    gold_scorer: str = ""
    """existing gold rater dir ('' = train one on half_b of the ratings)"""
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    """how the two scorers are trained"""
    val_fraction: float = 0.1
    """held-out fraction of items (the scorers' split)"""
    max_train_items: int = 4000
    """training texts for SFT (relabelled) and the DPO pair pool"""
    n_train_prompts: int = 512
    """RL training prompts (openings of training texts)"""
    n_eval_prompts: int = 16
    """held-out evaluation prompts"""
    opening_words: int = 2
    """words of a text kept in its prompt after the header (0 = the header alone)"""
    eval_n: int = 4
    """samples per evaluation prompt (and per requested target)"""
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=32, temperature=1.0, top_p=1.0, batch_size=16))
    """generation settings shared by every method, in training rollouts and evaluation"""
    kl_batch_size: int = 8
    """sequences per forward pass when computing exact KL"""
    conditional: ConditionalSettings = field(default_factory=ConditionalSettings)
    """condtune: relabel with the proxy, conditional SFT"""
    ppo: PPOConfig = field(default_factory=lambda: PPOConfig(batch_size=16, mini_batch_size=8, ppo_epochs=2, lr=1e-5, kl_coef=0.05,
                                                           save_every=5, sample_every=0))
    """PPO settings (model, scorer, prompts, output_dir, seed and lengths are set by the bench)"""
    ppo_checkpoints: list[int] = field(default_factory=lambda: [10, 20, 40])
    """PPO updates at which the policy is evaluated"""
    rloo: RLOOSettings = field(default_factory=RLOOSettings)
    """RLOO (trl) settings"""
    dpo: DPOSettings = field(default_factory=DPOSettings)
    """DPO (trl) settings"""
    best_of_n: BestOfNSettings = field(default_factory=BestOfNSettings)
    """best-of-n settings"""
    report_only: bool = False
    """write the report from out/results.jsonl (every method and seed in it) without training or evaluating"""
    threads: int = 1
    """torch CPU threads (1 avoids oversubscription on a shared machine; 0 = torch default)"""


@dataclass
class BenchContext:
    cfg: BenchConfig
    out: Path
    base_dir: str
    proxy: Scorer
    gold: Scorer
    train_items: pd.DataFrame
    heldout_items: pd.DataFrame
    train_prompts: list[str]
    eval_prompts: list[str]
    ref: object = None
    ref_tok: object = None


# ----------------------------------------------------------------------------- data and scorers


def header(cfg: BenchConfig) -> str:
    return VADER_PROMPTS[cfg.domain]


def make_prompt(head: str, text: str, words: int) -> str:
    opening = " ".join(text.split()[:words])
    return f"{head} {opening}" if opening else head


def review_text(prompt: str, completion: str, head: str) -> str:
    """What the scorers read: the prompt's opening words (header removed) plus the completion."""
    opening = prompt[len(head):].strip() if prompt.startswith(head) else prompt.strip()
    return f"{opening} {completion.strip()}".strip()


class ReviewScorer:
    """A scorer reading what every reward reads: the prompt's opening words plus the completion
    (:func:`review_text`). ``score_pairs`` is both the methods' reward function and what
    :func:`condtune.relabel.relabel` calls."""

    def __init__(self, scorer: Scorer, head: str):
        self.scorer, self.head, self.meta = scorer, head, scorer.meta

    def score_pairs(self, prompts, completions, batch_size: int = 64) -> np.ndarray:
        return self.scorer.score([review_text(p, c, self.head) for p, c in zip(prompts, completions)], batch_size=batch_size)


def score_fn(scorer: Scorer, head: str) -> Callable[[list[str], list[str]], np.ndarray]:
    return ReviewScorer(scorer, head).score_pairs


def get_scorer(cfg: BenchConfig, which: str, given: str, out: Path) -> Scorer:
    """The given scorer dir, or one trained on half of each item's ratings (cached in out/)."""
    from recipes.scorer_train import ScorerTrainConfig, train_pointwise

    path = Path(given) if given else out / "scorers" / which
    if not (path / "scorer.json").exists():
        log.info("training the %s scorer on %s of the ratings -> %s", which, "half_a" if which == "proxy" else "half_b", path)
        scfg = ScorerTrainConfig(domains=[cfg.domain], rating_split="half_a" if which == "proxy" else "half_b", backbone=cfg.scorer.backbone,
                                 max_items=cfg.scorer.max_items, val_fraction=cfg.val_fraction, optim=cfg.scorer.optim, out=str(path))
        scorer, metrics = train_pointwise(scfg)
        scorer.meta.metrics, scorer.meta.trained_on = metrics, f"vader:{cfg.domain}:{scfg.rating_split}"
        scorer.save(path)
    scorer = Scorer.load(path)
    log.info("%s scorer %s: held-out Pearson %.3f vs human mean", which, path, (scorer.meta.metrics or {}).get("pearson", float("nan")))
    return scorer


def split_items(cfg: BenchConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training items, held-out items) with ``item_id, prompt, completion, human_mean``, split as the scorers split."""
    from condtune.data import load_vader, to_items
    from recipes.scorer_train import split_items as held_mask

    items = to_items(load_vader(domains=[cfg.domain]))
    held = held_mask(items["item_id"].to_numpy(), cfg.val_fraction, 0)
    items = items.assign(prompt=header(cfg), human_mean=items["mean"])[["item_id", "prompt", "completion", "human_mean"]]
    train = items[~held].sample(frac=1.0, random_state=0).head(cfg.max_train_items).reset_index(drop=True)
    return train, items[held].reset_index(drop=True)


def build_context(cfg: BenchConfig) -> BenchContext:
    from condtune.assets import fetch_all, resolve_model
    from condtune.modeling import load_causal_lm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fetch_all()
    base_dir = resolve_model(cfg.model)
    if not Path(base_dir).is_dir():  # a hub id: save once, so trl can rebuild the reference from a directory
        base_dir = str(out / "base")
        if not (Path(base_dir) / "config.json").exists():
            model, tok = load_causal_lm(cfg.model)
            model.save_pretrained(base_dir)
            tok.save_pretrained(base_dir)
    proxy = get_scorer(cfg, "proxy", cfg.proxy_scorer, out)
    gold = get_scorer(cfg, "gold", cfg.gold_scorer, out)
    train, held = split_items(cfg)
    head, w = header(cfg), cfg.opening_words
    rng = np.random.default_rng(0)
    train_prompts = [make_prompt(head, t, w) for t in train["completion"].iloc[rng.permutation(len(train))[: cfg.n_train_prompts]]]
    eval_prompts = [make_prompt(head, t, w) for t in held["completion"].iloc[rng.permutation(len(held))[: cfg.n_eval_prompts]]]
    write_json(out / "prompts.json", {"train": train_prompts, "eval": eval_prompts})
    ref, ref_tok = load_causal_lm(base_dir)
    return BenchContext(cfg, out, base_dir, proxy, gold, train, held, train_prompts, eval_prompts, ref, ref_tok)


# ----------------------------------------------------------------------------- methods


def _relabel_to(ctx: BenchContext, items: pd.DataFrame, path: Path, cost: dict) -> None:
    from condtune.relabel import relabel, write_tagged
    from condtune.tags import TagFormat

    c = ctx.cfg.conditional
    calls, t0 = ctx.proxy.calls, time.perf_counter()
    tagged, card = relabel(items, ReviewScorer(ctx.proxy, header(ctx.cfg)), c.k, "quantile", TagFormat(style=c.tag_style), (), None, "proxy", "vader")
    cost = {**cost, "seconds": cost.get("seconds", 0.0) + time.perf_counter() - t0, "scorer_calls": ctx.proxy.calls - calls}
    write_json(path.with_name(path.stem + "_cost.json"), cost)
    write_tagged(tagged, card, path)


def tagged_corpus(ctx: BenchContext, method: str = "conditional"):
    """The SFT corpus of a conditional method, relabelled by the proxy, shared by every seed (its
    cost is charged to every seed): ``conditional`` tags the training texts (human-written);
    ``conditional_self`` first samples ``samples_per_prompt`` completions of every RL training
    prompt from the base policy (the reference) and tags those."""
    from condtune.relabel import TagCard, card_path

    path = ctx.out / ("tagged.jsonl" if method == "conditional" else "tagged_self.jsonl")
    if not card_path(path).exists():
        if method == "conditional":
            _relabel_to(ctx, ctx.train_items, path, {"generated_tokens": 0})
        else:
            t0 = time.perf_counter()
            r = BM.sample_ids(ctx.ref, ctx.ref_tok, ctx.train_prompts, ctx.cfg.conditional.samples_per_prompt, ctx.cfg.sampling, seed=0)
            items = pd.DataFrame({"prompt": [ctx.train_prompts[i] for i in r.prompt_index], "completion": r.texts})
            items = items[items["completion"].str.strip() != ""].reset_index(drop=True)
            _relabel_to(ctx, items, path, {"seconds": time.perf_counter() - t0, "generated_tokens": int(sum(r.n_tokens))})
    return read_table(path), TagCard.load(path), read_json(path.with_name(path.stem + "_cost.json"))


def train_conditional(ctx: BenchContext, seed: int, work: Path, method: str = "conditional") -> list[Checkpoint]:
    """Relabel (proxy) -> conditional SFT, in stages to each checkpoint's step count."""
    from condtune.modeling import load_causal_lm
    from condtune.policy import train_conditional as sft

    df, card, cost = tagged_corpus(ctx, method)
    c = ctx.cfg.conditional
    records = load_checkpoints(work / "snapshots.json") or []
    seconds = records[-1].wall_clock_s if records else cost["seconds"]
    for steps in sorted(c.checkpoints):
        if any(r.step == steps for r in records):
            continue
        # a fresh base each stage: trl's resume restores the weights (or, with LoRA, the adapter, which must
        # not land on a base that already has the previous stage merged into it)
        model, tok = load_causal_lm(ctx.base_dir)
        stats = sft(model, tok, df, card, replace(c.sft, max_steps=steps, seed=seed), work / "run", ctx.base_dir)
        seconds += stats["train_seconds"]
        snap = work / f"step_{steps}"
        shutil.rmtree(snap, ignore_errors=True)
        shutil.copytree(work / "run", snap, ignore=shutil.ignore_patterns("checkpoints"))
        records.append(Checkpoint(method, f"step_{steps}", steps, seconds, cost.get("generated_tokens", 0), cost["scorer_calls"], str(snap), conditional=True))
        save_checkpoints(work / "snapshots.json", records)
    return records


def train_conditional_self(ctx: BenchContext, seed: int, work: Path) -> list[Checkpoint]:
    return train_conditional(ctx, seed, work, "conditional_self")


def train_ppo(ctx: BenchContext, seed: int, work: Path) -> list[Checkpoint]:
    """The PPO baseline (condtune.baselines.ppo), run in chunks to each checkpoint's update count."""
    from condtune.baselines import ppo

    s, head = ctx.cfg.sampling, header(ctx.cfg)
    base = replace(ctx.cfg.ppo, model=ctx.base_dir, scorer="", output_dir=str(work / "run"), seed=seed, progress=True,
                   max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, resume=True)
    reward = score_fn(ctx.proxy, head)
    state = ppo.build_state(base)
    records = load_checkpoints(work / "snapshots.json") or []
    for updates in sorted(ctx.cfg.ppo_checkpoints):
        if any(r.step == updates for r in records):
            continue
        cfg = replace(base, total_updates=updates)
        ppo.train(state, ctx.train_prompts, reward, cfg)  # checkpoints (resume) at total_updates too
        final = ppo.save_final(state, cfg, {})
        snap = work / f"step_{updates}"
        shutil.rmtree(snap, ignore_errors=True)
        final.rename(snap)
        rows = ppo.read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
        tokens = int(round(sum(r.get("val/response_length", 0.0) for r in rows) * cfg.batch_size))
        records.append(Checkpoint("ppo", f"step_{updates}", updates, state.elapsed, tokens, updates * cfg.batch_size, str(snap)))
        save_checkpoints(work / "snapshots.json", records)
    return records


def train_rloo_method(ctx: BenchContext, seed: int, work: Path) -> list[Checkpoint]:
    return train_rloo(ctx.base_dir, ctx.train_prompts, score_fn(ctx.proxy, header(ctx.cfg)), ctx.cfg.rloo, ctx.cfg.sampling, work, seed)


def train_dpo_method(ctx: BenchContext, seed: int, work: Path) -> list[Checkpoint]:
    """DPO on pairs from the proxy's half of the human ratings (the proxy's own training signal)."""
    from condtune.data import load_vader, to_items
    from recipes.scorer_train import split_ratings

    d = ctx.cfg.dpo
    ratings = split_ratings(load_vader(domains=[ctx.cfg.domain]), "half_a", 0)
    means = to_items(ratings).set_index("item_id")["mean"]
    items = ctx.train_items.assign(score=ctx.train_items["item_id"].map(means))
    pairs = build_pairs(items.dropna(subset=["score"]), d.n_pairs, d.min_margin, seed)
    return train_dpo(ctx.base_dir, pairs, d, work, seed)


def train_bon_method(ctx: BenchContext, seed: int, work: Path) -> list[Checkpoint]:
    from condtune.modeling import load_causal_lm

    model, tok = load_causal_lm(ctx.base_dir)

    def sample_fn(prompts, n):
        r = BM.sample_ids(model, tok, prompts, n, ctx.cfg.sampling, seed=seed)
        return r.texts, r.n_tokens

    return train_best_of_n(ctx.eval_prompts, ctx.cfg.best_of_n, sample_fn, score_fn(ctx.proxy, header(ctx.cfg)), work)


TRAINERS: dict[str, Callable[[BenchContext, int, Path], list[Checkpoint]]] = {
    "conditional": train_conditional, "conditional_self": train_conditional_self, "ppo": train_ppo, "rloo": train_rloo_method, "dpo": train_dpo_method, "best_of_n": train_bon_method,
}


def planned_steps(cfg: BenchConfig, method: str) -> list[int]:
    """The checkpoint steps (best-of-n: the n values) the config asks of a method."""
    return sorted({"conditional": cfg.conditional.checkpoints, "conditional_self": cfg.conditional.checkpoints, "ppo": cfg.ppo_checkpoints, "rloo": cfg.rloo.checkpoints,
                   "dpo": cfg.dpo.checkpoints, "best_of_n": cfg.best_of_n.ns}[method])


def run_method(ctx: BenchContext, method: str, seed: int) -> list[Checkpoint]:
    """Train (or reuse a finished training of) one method for one seed."""
    if method not in TRAINERS:
        raise ValueError(f"unknown method {method!r}; choose from {list(TRAINERS)}")
    work = ctx.out / f"seed_{seed}" / method
    done = load_checkpoints(work / "checkpoints.json")
    if done is not None and sorted(c.step for c in done) == planned_steps(ctx.cfg, method):
        return done  # a longer schedule in the config resumes training from the last snapshot
    work.mkdir(parents=True, exist_ok=True)
    ckpts = [c for c in TRAINERS[method](ctx, seed, work) if c.step in planned_steps(ctx.cfg, method)]
    save_checkpoints(work / "checkpoints.json", ckpts)
    return ckpts


# ----------------------------------------------------------------------------- evaluation


def _measure(ctx: BenchContext, model, tok, prompts_in: list[str], plain: list[str], seed: int) -> tuple[dict, pd.DataFrame]:
    """Sample ``eval_n`` per prompt from ``model`` (given ``prompts_in``), exact KL against the
    reference on ``plain`` prompts, gold and proxy rewards."""
    s = ctx.cfg.sampling
    r = BM.sample_ids(model, tok, prompts_in, ctx.cfg.eval_n, s, seed=seed)
    pctx = [tok(prompts_in[i], add_special_tokens=False)["input_ids"] for i in r.prompt_index]
    rctx = [ctx.ref_tok(plain[i], add_special_tokens=False)["input_ids"] for i in r.prompt_index]
    kl = BM.exact_kl(model, ctx.ref, pctx, rctx, r.response_ids, tok.pad_token_id, s.temperature, ctx.cfg.kl_batch_size)
    head = header(ctx.cfg)
    texts = [review_text(plain[i], t, head) for i, t in zip(r.prompt_index, r.texts)]
    gold, proxy = ctx.gold.score(texts), ctx.proxy.score(texts)
    df = pd.DataFrame({"prompt": [plain[i] for i in r.prompt_index], "text": r.texts, "n_tokens": r.n_tokens, "kl": kl, "gold": gold, "proxy": proxy})
    return BM.text_stats(r.texts, gold, proxy, kl, r.n_tokens), df


def evaluate(ctx: BenchContext, ck: Checkpoint, seed: int) -> tuple[dict, pd.DataFrame]:
    """The shared evaluation of one checkpoint: (result row, per-sample table)."""
    from condtune.modeling import load_causal_lm

    prompts = ctx.eval_prompts
    row = {"method": ck.method, "seed": seed, "checkpoint": ck.name, "step": ck.step, BM.WALL: ck.wall_clock_s,
           BM.TOKENS: ck.generated_tokens, BM.CALLS: ck.scorer_calls, "kl_kind": "exact_token_level"}
    if ck.samples:  # best-of-n: picks already made; its KL is the analytic bound
        df = read_table(ck.samples).rename(columns={"proxy": "proxy_at_pick"})
        texts = [review_text(p, t, header(ctx.cfg)) for p, t in zip(df["prompt"], df["text"])]
        df["gold"], df["proxy"] = ctx.gold.score(texts), ctx.proxy.score(texts)
        df["kl"] = BM.best_of_n_kl(ck.step)
        row.update(BM.text_stats(df["text"].tolist(), df["gold"].to_numpy(), df["proxy"].to_numpy(), df["kl"].to_numpy(), df["n_tokens"].tolist()))
        row["kl_kind"] = "best_of_n_analytic"
        return row, df
    if not ck.conditional:
        model, tok = load_causal_lm(ck.path)
        stats, df = _measure(ctx, model, tok, prompts, prompts, seed)
        return {**row, **stats}, df
    from condtune.generate import ConditionalPolicy

    policy = ConditionalPolicy.load(ck.path)
    targets = [float(c) for c in policy.card.binning.centers]
    per, frames = [], []
    for t_i, target in enumerate(targets):
        stats, df = _measure(ctx, policy.model, policy.tokenizer, [policy.tagged(p, score=target) for p in prompts], prompts, seed * 1000 + t_i)
        per.append({"requested": target, "bin": policy.bin_for(target) + 1, **stats})
        frames.append(df.assign(requested=target))
    df = pd.concat(frames, ignore_index=True)
    row.update({k: v for k, v in per[-1].items() if k not in ("requested", "bin")})  # the frontier point: the highest bin
    means = [p[BM.GOLD] for p in per]
    row.update({"targets": per, BM.COND_SPEARMAN_GOLD: spearman(df["requested"], df["gold"]), BM.COND_SPEARMAN_PROXY: spearman(df["requested"], df["proxy"]),
                BM.COND_MAE_GOLD: mae(df["requested"], df["gold"]), BM.COND_MAE_PROXY: mae(df["requested"], df["proxy"]),
                BM.COND_MONOTONE: bool(np.all(np.diff(means) > 0))})
    return row, df


def ceiling_path(out: Path, method: str) -> Path:
    return out / ("human_ceiling.json" if method == "conditional" else "self_ceiling.json")


def data_ceiling(ctx: BenchContext, method: str = "conditional") -> dict:
    """A conditional method's data's own controllability under the gold rater: texts binned by
    the proxy into that method's bins, requested = the bin's median, achieved = gold score.
    ``conditional``: the held-out human texts; ``conditional_self``: the base policy's samples
    it trains on (the proxy never saw them)."""
    path = ceiling_path(ctx.out, method)
    if path.exists():
        return read_json(path)
    df, card, _ = tagged_corpus(ctx, method)
    if method == "conditional":
        texts, source = ctx.heldout_items["completion"].tolist(), "held-out human texts"
    else:
        texts, source = [review_text(p, c, header(ctx.cfg)) for p, c in zip(df["prompt"], df["completion"])], "the base-policy samples it trains on"
    bins = card.binning.assign(ctx.proxy.score(texts)).astype(int)
    requested = np.asarray(card.binning.centers)[bins]
    gold = ctx.gold.score(texts)
    per = [{"requested": float(card.binning.centers[b]), "bin": b + 1, "gold_mean": float(gold[bins == b].mean()),
            "gold_sd": float(gold[bins == b].std(ddof=1)), "n": int((bins == b).sum())} for b in range(card.binning.k) if (bins == b).sum() > 1]
    out = {"method": method, "source": source, "n_texts": len(texts), "spearman_gold": spearman(requested, gold), "mae_gold": mae(requested, gold),
           "per_bin": per, "monotone_gold": bool(np.all(np.diff([p["gold_mean"] for p in per]) > 0))}
    if method == "conditional":
        out["human_mean_spearman_gold"] = spearman(ctx.heldout_items["human_mean"], gold)
    write_json(path, out)
    return out


# ----------------------------------------------------------------------------- results store (resume)


def results_path(out: Path) -> Path:
    return out / "results.jsonl"


def read_results(out: Path) -> list[dict]:
    return read_jsonl(results_path(out), missing_ok=True)


def done_keys(out: Path) -> set[tuple[str, int, str]]:
    return {(r["method"], int(r["seed"]), r["checkpoint"]) for r in read_results(out)}


def append_result(out: Path, row: dict, samples: pd.DataFrame) -> None:
    """Samples first, then the result line (one write + flush), so a finished line means a finished checkpoint."""
    write_table(samples, out / "samples" / f"{row['method']}_seed{row['seed']}_{row['checkpoint']}.jsonl")
    with results_path(out).open("a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()


def checkpoint_to_dict(c: Checkpoint) -> dict:
    return asdict(c)
