"""The online loop of conditional fine-tuning (Quark, Lu et al. 2022; Rewards-in-Context, Yang et
al. 2024). Each round:

1. samples from the current policy at its targets: ``top_share`` of the samples at the top bin,
   the rest at bins drawn uniformly, kept as the sampled token ids;
2. scores them with the proxy and adds them to the pool (the starting rows stay, if kept);
3. refits the bins over the whole pool (quantiles) and re-tags it;
4. trains on for ``steps_per_round`` steps with the same SFT settings (KL term included, constant
   learning rate), against the same reference.

Every cost counts (sampling, scoring, training). A round's row in ``rounds.json`` describes the
samples it drew (from the policy of the round before): their proxy score at the top target and
their exact KL to the reference. Resumes mid-round: ``round_<r>/samples.jsonl`` is written once
the round's samples are scored, ``round_<r>/policy`` once it has trained (its card last); a
rerun skips what is done, and an interrupted training resumes from its trainer checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from condtune.io import read_json, write_json
from condtune.kl import sampled_kl
from condtune.modeling import load_causal_lm
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard, relabel, tagged_prompt
from condtune.sampling import SamplingConfig, sample
from condtune.saved_policy import POLICY_CARD, load_policy_card
from condtune.tables import read_table, write_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineSettings:
    rounds: int = 0
    """rounds of sample -> score -> refit bins -> train (0 = off)"""
    samples_per_prompt: int = 2
    """samples drawn per training prompt each round"""
    top_share: float = 0.75
    """share of the samples requested at the top bin; the rest at bins drawn uniformly"""
    steps_per_round: int = 20
    """optimizer steps per round (constant learning rate)"""
    keep_initial: bool = True
    """keep the starting rows (e.g. the human texts) in the pool"""
    kl_samples: int = 64
    """top-target samples per round whose exact KL to the reference is measured (0 = none)"""

    def __post_init__(self):
        checks = {
            "rounds": self.rounds >= 0,
            "samples_per_prompt": self.samples_per_prompt >= 1,
            "steps_per_round": self.steps_per_round >= 1,
            "top_share": 0 <= self.top_share <= 1,
            "kl_samples": self.kl_samples >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"{bad[0]}={getattr(self, bad[0])!r}: online settings out of range (rounds, kl_samples >= 0; "
                "samples_per_prompt, steps_per_round >= 1; 0 <= top_share <= 1)"
            )


def requested_bins(n: int, k: int, top_share: float, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` requested bins: the top one with probability ``top_share``, else uniform over all."""
    return np.where(rng.random(n) < top_share, k - 1, rng.integers(0, k, n))


def sample_at_targets(
    model, tok, card: TagCard, *, prompts: list[str], bins: np.ndarray, sampling: SamplingConfig, seed: int
) -> tuple[pd.DataFrame, int]:
    """One sample per (prompt, requested bin) row, as text and token ids; and the tokens generated."""
    frames, tokens = [], 0
    for b in np.unique(bins):
        rows = [p for p, bb in zip(prompts, bins) if bb == b]
        s = sample(
            model,
            tok,
            [tagged_prompt(card, p, bin_index=int(b)) for p in rows],
            n=1,
            cfg=sampling,
            seed=seed + int(b),
            desc=f"online: bin {int(b)}",
        )
        frames.append(
            pd.DataFrame(
                {
                    "prompt": rows,
                    "completion": [t[0] for t in s.texts],
                    "completion_ids": [ids[0] for ids in s.response_ids],
                    "requested_bin": int(b),
                }
            )
        )
        tokens += s.total_tokens
    return pd.concat(frames, ignore_index=True), tokens


def refit(pool: pd.DataFrame, card: TagCard, source: str) -> tuple[pd.DataFrame, TagCard]:
    """The pool re-tagged with bins refitted to its scores (same k and tag format)."""
    return relabel(
        pool,
        None,
        num_bins=card.binning.k,
        tag_format=card.tag_format,
        scorer_name=card.scorer,
        source=source,
        scores=pool["score"].to_numpy(float),
    )


def top_kl(
    model, ref, *, tok, ref_tok, samples: pd.DataFrame, card: TagCard, n: int, sampling: SamplingConfig
) -> float:
    """Mean exact KL to ``ref`` of up to ``n`` top-bin samples (as drawn: tagged prompt, temperature, top-p)."""
    top = samples[samples["requested_bin"] == card.binning.k - 1].head(n)
    if not len(top) or not n:
        return float("nan")
    enc = lambda t, texts: [t(x, add_special_tokens=False)["input_ids"] for x in texts]  # noqa: E731
    kl = sampled_kl(
        model,
        ref,
        contexts=enc(tok, [tagged_prompt(card, p, bin_index=card.binning.k - 1) for p in top["prompt"]]),
        ref_contexts=enc(ref_tok, top["prompt"]),
        responses=[list(map(int, ids)) for ids in top["completion_ids"]],
        pad_id=tok.pad_token_id,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
    )
    return float(np.mean(kl))


def run_online(
    start: str | Path,
    pool: pd.DataFrame,
    reward,
    *,
    prompts: list[str],
    s: SFTSettings,
    o: OnlineSettings,
    sampling: SamplingConfig,
    out_dir: str | Path,
    base: str,
    on_round: Callable[[dict, Path], None] | None = None,
    pairs: pd.DataFrame | None = None,
) -> list[dict]:
    """``o.rounds`` rounds from the policy in ``start`` (a condtune policy dir); ``pool`` holds the
    starting rows (``prompt``, ``completion``, ``score``); ``reward.score_pairs`` is the proxy.
    Returns the round table (also in ``out_dir/rounds.json``); ``on_round(row, policy_dir)`` may add
    columns (the benchmark's gold score) before a row is saved. ``pairs`` feeds each round's pairwise
    term (``s.pairwise > 0``), as in :func:`condtune.policy.train_conditional`."""
    out_dir, policy_dir = Path(out_dir), Path(start)
    check_score_targets_only(policy_dir)
    table: list[dict] = read_json(out_dir / "rounds.json") if (out_dir / "rounds.json").exists() else []
    pool = (
        pool[["prompt", "completion", "score"]].copy()
        if o.keep_initial
        else pool.iloc[:0][["prompt", "completion", "score"]]
    )
    ref, ref_tok = load_causal_lm(base)
    loop = _Loop(
        reward, [p for p in prompts for _ in range(o.samples_per_prompt)], s, o, sampling, base, ref, ref_tok, pairs
    )
    rng = np.random.default_rng(s.seed)
    for r in range(1, o.rounds + 1):
        rd = out_dir / f"round_{r}"
        card, _ = load_policy_card(policy_dir)
        bins = requested_bins(len(prompts) * o.samples_per_prompt, card.binning.k, o.top_share, rng=rng)
        if (rd / "policy" / POLICY_CARD).exists():  # finished in an earlier run
            done = read_table(rd / "samples.jsonl").drop(columns=["requested_bin"])
            pool, policy_dir = pd.concat([pool, done], ignore_index=True), rd / "policy"
            continue
        model, tok = load_causal_lm(policy_dir)
        row = {"round": r, "sampled_by": str(policy_dir)}
        samples = round_samples(loop, r, rd, row, model, tok, card, bins)
        pool = pd.concat([pool, samples.drop(columns=["requested_bin"])], ignore_index=True)
        train_round(loop, r, rd, row, model, tok, pool, card)
        policy_dir = rd / "policy"
        if on_round is not None:
            on_round(row, policy_dir)
        table = [t for t in table if t["round"] != r] + [row]
        write_json(out_dir / "rounds.json", table)
        log_round(r, row, len(pool))
    return table


def check_score_targets_only(policy_dir: Path) -> None:
    """Online rounds sample at score targets only: a policy with attribute tags is a ValueError."""
    attributes = load_policy_card(policy_dir)[0].attributes
    if attributes:
        raise ValueError(
            f"{policy_dir}: online rounds sample at score targets only; this policy also has attribute tags "
            f"{sorted(attributes)} (train without tag_columns to use them)"
        )


@dataclass(frozen=True)
class _Loop:
    """What every round of one :func:`run_online` shares."""

    reward: Any
    prompts: list[str]
    """the training prompts, each ``o.samples_per_prompt`` times: one sample each a round"""
    s: SFTSettings
    o: OnlineSettings
    sampling: SamplingConfig
    base: str
    ref: Any
    ref_tok: Any
    pairs: pd.DataFrame | None


def round_samples(
    loop: _Loop, r: int, rd: Path, row: dict, model, tok, card: TagCard, bins: np.ndarray
) -> pd.DataFrame:
    """Round ``r``'s samples at the requested ``bins``, drawn from ``model`` and scored now (their cost and
    top-target KL into ``row`` and ``rd``), or read back from ``rd`` once done; their proxy scores into ``row``."""
    if (rd / "samples.jsonl").exists():
        samples = read_table(rd / "samples.jsonl")
        row.update(read_json(rd / "sampling_cost.json"))
    else:
        t0 = time.perf_counter()
        samples, tokens = sample_at_targets(
            model, tok, card, prompts=loop.prompts, bins=bins, sampling=loop.sampling, seed=loop.s.seed * 1000 + r
        )
        samples["score"] = loop.reward.score_pairs(samples["prompt"].tolist(), samples["completion"].tolist())
        cost = {
            "sample_seconds": time.perf_counter() - t0,
            "generated_tokens": tokens,
            "scorer_calls": len(samples),
        }
        kl = top_kl(
            model,
            loop.ref,
            tok=tok,
            ref_tok=loop.ref_tok,
            samples=samples,
            card=card,
            n=loop.o.kl_samples,
            sampling=loop.sampling,
        )
        row.update(cost, top_kl=kl)
        write_json(rd / "sampling_cost.json", {**cost, "top_kl": row["top_kl"]})
        write_table(samples, rd / "samples.jsonl")
    top = samples["requested_bin"] == card.binning.k - 1
    row.update(top_proxy=float(samples.loc[top, "score"].mean()), all_proxy=float(samples["score"].mean()))
    return samples


def train_round(loop: _Loop, r: int, rd: Path, row: dict, model, tok, pool: pd.DataFrame, card: TagCard) -> None:
    """Round ``r``'s training: the pool re-tagged with refitted bins, ``o.steps_per_round`` steps at a constant
    learning rate into ``rd/policy``, against the same reference; its time, pool size and edges into ``row``."""
    s, o, base, ref, pairs = loop.s, loop.o, loop.base, loop.ref, loop.pairs
    tagged, new_card = refit(pool, card, f"online round {r}")
    t0 = time.perf_counter()
    rs = replace(s, max_steps=o.steps_per_round, warmup_ratio=0.0, lr_scheduler_type="constant", seed=s.seed + r)
    train_conditional(
        model, tok, tagged, card=new_card, s=rs, out_dir=rd / "policy", base=base, ref_model=ref, pairs=pairs
    )
    row.update(
        train_seconds=time.perf_counter() - t0, pool_rows=len(pool), edges=list(map(float, new_card.binning.edges))
    )


def log_round(r: int, row: dict, pool_rows: int) -> None:
    """Round ``r``'s line in the log: its proxy scores, KL, pool size and times."""
    log.info(
        "online round %d: top-target proxy %+.3f (all %+.3f), KL %.2f, pool %d rows; %.0f s sampling, %.0f s training",
        r,
        row["top_proxy"],
        row["all_proxy"],
        row.get("top_kl", float("nan")),
        pool_rows,
        row.get("sample_seconds", 0.0),
        row["train_seconds"],
    )
