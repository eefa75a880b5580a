"""One ``train_<method>`` per method. Each trains one run (one seed, one setting of its sweep)
from the base policy and returns its :class:`Checkpoint` list: intermediate snapshots of that one
run, each with the cost so far (data generation, scoring and training included)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from condtune import config as C
from condtune.baselines import ppo
from condtune.baselines.best_of_n import train_best_of_n as bon
from condtune.baselines.dpo import build_pairs
from condtune.baselines.dpo import train_dpo as dpo
from condtune.baselines.ppo_checkpoint import save_final
from condtune.baselines.ppo_report import read_metrics
from condtune.baselines.rloo import train_rloo as rloo
from condtune.bench.raters import Raters, TaskReward
from condtune.bench.settings import DECODE_SETTINGS, BenchConfig, run_setting
from condtune.bench.task import Prompts, Task
from condtune.checkpointing import (
    Checkpoint,
    claim_run,
    load_checkpoints,
    prune,
    save_checkpoints,
    snapshot_callback,
    weights_digest,
)
from condtune.io import read_json, write_json
from condtune.modeling import load_causal_lm
from condtune.online import run_online
from condtune.policy import train_conditional as sft
from condtune.ratings import split_ratings, to_items
from condtune.relabel import TagCard, card_path, relabel, write_tagged
from condtune.sampling import sample
from condtune.saved_policy import POLICY_CARD
from condtune.tables import read_table
from condtune.tags import TagFormat


@dataclass
class BenchContext:
    """What every method and the evaluation share."""

    cfg: BenchConfig
    task: Task
    out: Path
    base_dir: str
    raters: Raters
    train_items: pd.DataFrame
    heldout_items: pd.DataFrame
    prompts: Prompts
    ref: Any = None
    ref_tok: Any = None

    @property
    def reward(self) -> TaskReward:
        """The proxy, reading what the task's raters read: what every method optimises."""
        return TaskReward(self.raters.proxy, self.task)


@dataclass
class Run:
    """One training run: a method, one entry of its sweep, one seed."""

    method: str
    setting: str
    seed: int
    settings: Any
    """the method's settings block with the setting's overrides applied"""

    def work(self, out: Path) -> Path:
        return out / f"seed_{self.seed}" / self.method / self.setting


def settings_of(cfg: BenchConfig, method: str) -> Any:
    return {
        "conditional": cfg.conditional,
        "conditional_self": cfg.conditional,
        "conditional_online": cfg.conditional,
        "ppo": cfg.ppo,
        "rloo": cfg.rloo,
        "dpo": cfg.dpo,
        "best_of_n": cfg.best_of_n,
    }[method]


def make_run(cfg: BenchConfig, method: str, entry: str, *, seed: int) -> Run:
    """The run of one sweep entry: named by its training overrides, with all of them (decodes too) applied."""
    base = settings_of(cfg, method)
    s = base if entry == "default" else C.with_overrides(base, entry, f"sweeps.{method}")
    return Run(method=method, setting=run_setting(entry), seed=seed, settings=s)


# ----------------------------------------------------------------------------- conditional SFT


def relative_scores(scores: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, float]:
    """Scores minus their group's (prompt's) mean, plus the overall mean; and the share of the
    score variance that lies between groups (0 = the prompt says nothing about the score).

    The share is the one-way ANOVA estimate (the intraclass correlation): with few samples per
    prompt the variance of the prompt means also holds within-prompt noise (sigma_w^2 / n), which
    is taken out, so two samples per prompt do not make the share look larger than it is."""
    s = pd.Series(np.asarray(scores, dtype=float))
    g = s.groupby(np.asarray(groups))
    means = g.transform("mean").to_numpy()
    within = float(g.var(ddof=1).mean()) if (g.size() > 1).any() else 0.0
    between = max(float(g.mean().var(ddof=1)) - within / float(g.size().mean()), 0.0) if g.ngroups > 1 else 0.0
    share = between / (between + within) if between + within > 0 else 0.0
    return s.to_numpy() - means + float(s.mean()), share


def own_samples(ctx: BenchContext, n: int) -> tuple[pd.DataFrame, dict]:
    """``n`` base-policy samples of every training prompt, kept as sampled token ids (a sample cut
    at max_new_tokens has no EOS), with their proxy scores; empty completions dropped."""
    t0, calls = time.perf_counter(), ctx.raters.proxy.calls
    s = sample(ctx.ref, ctx.ref_tok, ctx.prompts.train, n=n, cfg=ctx.cfg.sampling, seed=0, desc="own samples")
    rows = [
        {"prompt": p, "completion": t, "completion_ids": ids}
        for p, texts, idss in zip(ctx.prompts.train, s.texts, s.response_ids)
        for t, ids in zip(texts, idss)
    ]
    df = pd.DataFrame(rows)
    df = df[df["completion"].str.strip() != ""].reset_index(drop=True)
    df["proxy"] = ctx.reward.score_pairs(df["prompt"].tolist(), df["completion"].tolist())
    cost = {
        "seconds": time.perf_counter() - t0,
        "generated_tokens": s.total_tokens,
        "scorer_calls": ctx.raters.proxy.calls - calls,
    }
    return df, cost


def tagged_corpus(ctx: BenchContext, method: str, c) -> tuple[pd.DataFrame, Any, dict]:
    """The SFT corpus of a conditional method, relabelled by the proxy, shared by every seed (its
    cost is charged to every seed): ``conditional`` tags the training texts (human-written);
    ``conditional_self`` tags the base policy's own samples of the training prompts."""
    what = {"method": method, "k": c.num_bins, "tag_style": c.tag_style, "max_train_items": ctx.cfg.max_train_samples}
    if method == "conditional_self":
        what.update(
            relative_bins=c.relative_bins,
            samples_per_prompt=c.samples_per_prompt,
            prompts=ctx.prompts.train,
            sampling=C.to_dict(ctx.cfg.sampling),
        )
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]
    name = f"tagged_{method}_k{c.num_bins}_{c.tag_style}_{digest}"
    path = ctx.out / "corpus" / f"{name}.jsonl"
    if not card_path(path).exists():
        info: dict = {}
        if method == "conditional":
            items, t0, calls = ctx.train_items, time.perf_counter(), ctx.raters.proxy.calls
            tagged, card = relabel(
                items,
                ctx.reward,
                num_bins=c.num_bins,
                tag_format=TagFormat(style=c.tag_style),
                scorer_name="proxy",
                source=ctx.task.name,
            )
            cost = {
                "seconds": time.perf_counter() - t0,
                "generated_tokens": 0,
                "scorer_calls": ctx.raters.proxy.calls - calls,
            }
        else:
            items, cost = own_samples(ctx, c.samples_per_prompt)
            rel, between = relative_scores(items["proxy"].to_numpy(), items["prompt"].to_numpy())
            info = {"between_prompt_variance_share": between, "relative_bins": c.relative_bins}
            tagged, card = relabel(
                items,
                ctx.reward,
                num_bins=c.num_bins,
                tag_format=TagFormat(style=c.tag_style),
                scorer_name="proxy",
                source=ctx.task.name,
                scores=rel if c.relative_bins else items["proxy"].to_numpy(),
            )
        write_json(path.with_name(name + "_cost.json"), {**cost, **info})
        write_tagged(tagged, card, path)
    return read_table(path), TagCard.load(path), read_json(path.with_name(name + "_cost.json"))


def train_conditional(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    """Relabel (proxy) -> conditional SFT: one run to the last checkpoint, snapshotted on the way."""
    c = run.settings
    df, card, cost = tagged_corpus(ctx, "conditional_self" if run.method == "conditional_self" else "conditional", c)
    pairs = None
    if c.sft.pairwise > 0:  # the ranking term's answers: the base model's own samples (charged to this run)
        pairs, _, pair_cost = tagged_corpus(ctx, "conditional_self", c)
        if run.method != "conditional_self":
            cost = {key: cost[key] + pair_cost[key] for key in ("seconds", "generated_tokens", "scorer_calls")}
    steps = sorted(c.checkpoints)
    snap = snapshot_callback(
        run.method,
        work,
        steps,
        counters=lambda: {"generated_tokens": cost["generated_tokens"], "scorer_calls": cost["scorer_calls"]},
        base_seconds=cost["seconds"],
        setting=run.setting,
        conditional=True,
        on_save=lambda d: write_json(d / POLICY_CARD, {"base_model": ctx.base_dir, **card.to_dict()}),
    )
    model, tok = load_causal_lm(ctx.base_dir)
    sft(
        model,
        tok,
        df,
        card=card,
        s=replace(c.sft, max_steps=steps[-1], seed=run.seed),
        out_dir=work / "run",
        base=ctx.base_dir,
        callbacks=[snap],
        pairs=pairs,
    )
    return snap.records


def train_conditional_online(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    """The conditional run to its last checkpoint, then ``online.rounds`` rounds of sampling at the
    targets, proxy scoring, refitting the bins over the pool (human texts + own samples) and
    training on (:func:`condtune.online.run_online`); each round's policy is a checkpoint, its cost
    the offline run's plus every round's sampling, scoring and training so far."""
    c = run.settings
    offline = train_conditional(ctx, run, work)
    df, _, _ = tagged_corpus(ctx, "conditional", c)
    table = run_online(
        offline[-1].path,
        df,
        ctx.reward,
        prompts=ctx.prompts.train,
        s=replace(c.sft, seed=run.seed),
        o=c.online,
        sampling=ctx.cfg.sampling,
        out_dir=work / "online",
        base=ctx.base_dir,
        pairs=tagged_corpus(ctx, "conditional_self", c)[0] if c.sft.pairwise > 0 else None,
    )
    records, last = list(offline), offline[-1]
    wall, tokens, calls = last.wall_clock_s, last.generated_tokens, last.scorer_calls
    for row in sorted(table, key=lambda r: r["round"]):
        wall += row.get("sample_seconds", 0.0) + row["train_seconds"]
        tokens, calls = tokens + row.get("generated_tokens", 0), calls + row.get("scorer_calls", 0)
        records.append(
            Checkpoint(
                method=run.method,
                setting=run.setting,
                name=f"round_{row['round']}",
                step=last.step + row["round"] * c.online.steps_per_round,
                wall_clock_s=wall,
                generated_tokens=tokens,
                scorer_calls=calls,
                path=str(work / "online" / f"round_{row['round']}" / "policy"),
                conditional=True,
                extra={k: row[k] for k in ("top_proxy", "top_kl", "pool_rows") if k in row},
            )
        )
    return records


def train_ppo(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    """The PPO baseline (condtune.baselines.ppo, constant lr): one run, saved at each checkpoint's update count."""
    s = ctx.cfg.sampling
    base = replace(
        run.settings,
        model=ctx.base_dir,
        scorer="",
        output_dir=str(work / "run"),
        seed=run.seed,
        progress=True,
        max_new_tokens=s.max_new_tokens,
        temperature=s.temperature,
        top_p=s.top_p,
    )
    state = ppo.build_state(base)
    records = load_checkpoints(work / "snapshots.json") or []
    for updates in run_steps(ctx.cfg, run):
        if any(r.step == updates for r in records):
            continue
        cfg = replace(base, max_steps=updates)
        ppo.train(state, ctx.prompts.train, ctx.reward, cfg=cfg)
        snap = work / f"step_{updates}"
        shutil.rmtree(snap, ignore_errors=True)
        save_final(state, cfg, {}).rename(snap)
        rows = read_metrics(Path(cfg.output_dir) / "metrics.jsonl")
        tokens = int(round(sum(r.get("val/response_length", 0.0) for r in rows) * cfg.per_device_train_batch_size))
        records.append(
            Checkpoint(
                method="ppo",
                setting=run.setting,
                name=f"step_{updates}",
                step=updates,
                wall_clock_s=state.elapsed,
                generated_tokens=tokens,
                scorer_calls=updates * cfg.per_device_train_batch_size,
                path=str(snap),
            )
        )
        save_checkpoints(work / "snapshots.json", records)
    return records


def train_rloo(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    return rloo(
        ctx.base_dir,
        ctx.prompts.train,
        ctx.reward,
        s=run.settings,
        sampling=ctx.cfg.sampling,
        out_dir=work,
        seed=run.seed,
        setting=run.setting,
    )


def train_dpo(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    """DPO on pairs from the proxy's half of the human ratings (the proxy's own training signal)."""
    d = run.settings
    means = to_items(split_ratings(ctx.task.ratings(), "half_a", 0)).set_index("item_id")["mean"]
    items = ctx.train_items.assign(score=ctx.train_items["item_id"].map(means))
    pairs = build_pairs(items.dropna(subset=["score"]), d.max_train_samples, d.min_margin, seed=run.seed)
    return dpo(ctx.base_dir, pairs, d, out_dir=work, seed=run.seed, setting=run.setting)


def train_best_of_n(ctx: BenchContext, run: Run, work: Path) -> list[Checkpoint]:
    """Best-of-n from the base policy on the evaluation prompts (it needs no training)."""

    def sample_fn(prompts, n):
        s = sample(ctx.ref, ctx.ref_tok, prompts, n=n, cfg=ctx.cfg.sampling, seed=run.seed, desc="best-of-n pool")
        return [t for row in s.texts for t in row], [c for row in s.n_tokens for c in row]

    return bon(ctx.prompts.eval, run.settings, sample_fn=sample_fn, score_fn=ctx.reward, out_dir=work)


TRAINERS: dict[str, Callable[[BenchContext, Run, Path], list[Checkpoint]]] = {
    "conditional": train_conditional,
    "conditional_self": train_conditional,
    "conditional_online": train_conditional_online,
    "ppo": train_ppo,
    "rloo": train_rloo,
    "dpo": train_dpo,
    "best_of_n": train_best_of_n,
}


def run_steps(cfg: BenchConfig, run: Run) -> list[int]:
    """The checkpoint steps (best-of-n: the n values) of one run, its sweep's overrides applied."""
    if run.method == "ppo":
        return sorted(cfg.ppo_checkpoints)
    if run.method == "conditional_online":
        o, last = run.settings.online, max(run.settings.checkpoints)
        return sorted(run.settings.checkpoints) + [last + r * o.steps_per_round for r in range(1, o.rounds + 1)]
    return sorted(run.settings.ns if run.method == "best_of_n" else run.settings.checkpoints)


def run_method(ctx: BenchContext, run: Run) -> list[Checkpoint]:
    """Train (or reuse a finished training of) one run; its checkpoints.json marks it finished."""
    work = run.work(ctx.out)
    claim_run(
        work,
        {k: v for k, v in C.to_dict(run.settings).items() if k not in DECODE_SETTINGS},
        run.method,
        outputs=("checkpoints.json", "snapshots.json", "run", "checkpoints"),
        hint=f"to compare a new setting, add it as a sweep entry (sweeps.{run.method}=[...]) "
        "or use another output_dir=; "
        f"to redo it, delete {work}",
        defaults=C.defaults_dict(run.settings),
    )
    done = load_checkpoints(work / "checkpoints.json")
    if done is not None:
        return done
    steps = run_steps(ctx.cfg, run)
    ckpts = [c for c in TRAINERS[run.method](ctx, run, work) if c.step in steps]
    for c in ckpts:  # so that a retraining on another machine can show it reached the same weights
        if c.path and (digest := weights_digest(c.path)):
            c.extra["weights_digest"] = digest
    save_checkpoints(work / "checkpoints.json", ckpts)
    return ckpts


def finish_run(ctx: BenchContext, run: Run, ckpts: list[Checkpoint]) -> None:
    """After evaluation: free the disk (keep the final weights of the methods in ``keep_weights``)."""
    prune(run.work(ctx.out), ckpts, keep_final=run.method in ctx.cfg.keep_weights)
