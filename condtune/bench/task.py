"""A benchmark task: the data, the prompts, what the raters read, and how the individual human
ratings are split between the proxy scorer and the gold rater.

:class:`Task` is the interface the benchmark uses; :class:`RatedTextTask` implements it for any
set of texts with several individual ratings each (the proxy learns from one half of each text's
ratings, the gold rater from the other half). A concrete task is one small module in
``condtune/bench/tasks/`` that defines ``TASK``; :func:`load_task` finds it by name.

Prompts are the task's header plus a **neutral opening**: the first words of a text when none of
them carries sentiment (:attr:`RatedTextTask.evaluative`: a word of VADER's lexicon, or one whose
texts people rated far from the mean), so the prompt does not commit the text to a sentiment and
does not fight a requested score. One function, :func:`prompt_sets`, draws the
training and evaluation prompts that every method, seed and diagnostic shares. The raters read
what the policy wrote: the completion, without the prompt.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from condtune.assets import vader_dir
from condtune.ratings import load_pointwise, split_items, to_items
from condtune.vader import load_vader


class Prompts(NamedTuple):
    train: list[str]
    """RL / own-sample training prompts: the header plus neutral openings of training texts"""
    eval: list[str]
    """held-out evaluation prompts: the header alone, then neutral openings of held-out texts (distinct)"""


def _words(text: str) -> list[str]:
    """Lower-cased words without punctuation or surrounding quotes (inner apostrophes kept: it's)."""
    return [re.sub(r"[^\w']", "", w.lower()).strip("'") for w in text.split()]


@dataclass
class RatedTextTask:
    """Texts with individual human ratings, written after a fixed header."""

    name: str
    """the task's name (its module in condtune/bench/tasks/)"""
    header: str
    """the prompt every text is written after, e.g. 'Movie review:'"""
    ratings_source: str = "vader"
    """ratings for the scorers: 'vader' or a pointwise ratings file (item_id, completion, score per rating)"""
    domains: list[str] = field(default_factory=list)
    """vader only: which domains"""
    val_fraction: float = 0.1
    """held-out fraction of items (the scorers' split)"""

    # ------------------------------------------------------------------ data
    def ratings(self) -> pd.DataFrame:
        """One row per individual rating: item_id, completion, score."""
        return (
            load_vader(domains=self.domains) if self.ratings_source == "vader" else load_pointwise(self.ratings_source)
        )

    @cached_property
    def items(self) -> pd.DataFrame:
        """One row per text: item_id, prompt (the header), completion, human_mean, held_out."""
        items = to_items(self.ratings())
        held = split_items(items["item_id"].to_numpy(), self.val_fraction, 0)
        return items.assign(prompt=self.header, human_mean=items["mean"], held_out=held)[
            ["item_id", "prompt", "completion", "human_mean", "held_out"]
        ].reset_index(drop=True)

    def split(self, max_train: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training items in a fixed shuffled order, cut to ``max_train``; held-out items)."""
        train = self.items[~self.items["held_out"]].sample(frac=1.0, random_state=0)
        train = train.head(max_train) if max_train else train
        return train.reset_index(drop=True), self.items[self.items["held_out"]].reset_index(drop=True)

    def scorer_data(self) -> dict:
        """The ScorerTrainConfig fields that point a scorer at this task's ratings."""
        return {"ratings": self.ratings_source, "domains": list(self.domains)}

    # ------------------------------------------------------------------ text
    @cached_property
    def lexicon(self) -> set[str]:
        """Words that carry sentiment (VADER's lexicon: 7,500 words rated by people)."""
        lines = (vader_dir() / "vader_sentiment_lexicon.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        return {ln.split("\t", 1)[0].lower() for ln in lines if "\t" in ln}

    @cached_property
    def evaluative(self) -> set[str]:
        """Words taken to carry sentiment: the lexicon's, plus words whose training texts' human
        ratings sit far from the mean (3+ texts, at least half a standard deviation away, z >= 2):
        'mesmerizing' and 'tasty' are not in VADER's lexicon but are in this data's raters' eyes."""
        train = self.items[~self.items["held_out"]]
        dev = train["human_mean"] - train["human_mean"].mean()
        sd = float(dev.std())
        per: dict[str, list[float]] = {}
        for text, d in zip(train["completion"], dev):
            for w in set(_words(text)) - {""}:
                per.setdefault(w, []).append(d)
        data = {
            w
            for w, v in per.items()
            if len(v) >= 3 and abs(np.mean(v)) >= 0.5 * sd and abs(np.mean(v)) * np.sqrt(len(v)) >= 2 * sd
        }
        return self.lexicon | data

    def neutral_opening(self, text: str, words: int) -> str | None:
        """The first ``words`` words of ``text`` if none carries sentiment and text goes on for 3+ more words."""
        ws = text.split()
        if len(ws) < words + 3:
            return None
        clean = _words(" ".join(ws[:words]))
        return " ".join(ws[:words]) if all(clean) and not any(w in self.evaluative for w in clean) else None

    def prompt(self, opening: str = "") -> str:
        return f"{self.header} {opening}".rstrip()

    def review_text(self, prompt: str, completion: str) -> str:
        """What every rater reads: what the policy wrote (the completion), not the prompt."""
        return completion.strip()

    def continuations(self, texts: pd.Series, words: int) -> pd.DataFrame:
        """Texts that start with a neutral opening, split into (opening, continuation): the human
        counterpart of a policy's completion of a neutral prompt (the controllability ceiling)."""
        rows = []
        for t in texts:
            op = self.neutral_opening(t, words)
            if op is not None:
                rows.append({"prompt": self.prompt(op), "completion": t.strip()[len(op) :].strip()})
        return pd.DataFrame(rows, columns=["prompt", "completion"])


Task = RatedTextTask


def prompt_sets(task: Task, *, n_train: int, n_eval: int, words: int, max_train_items: int = 0) -> Prompts:
    """The benchmark's prompts, the same for every method, seed and diagnostic: distinct neutral
    openings of training / held-out texts in a fixed random order; the evaluation set starts with
    the header alone."""
    train, held = task.split(max_train_items)

    def distinct(texts: pd.Series, n: int) -> list[str]:
        out: list[str] = []
        for i in np.random.default_rng(0).permutation(len(texts)):
            op = task.neutral_opening(texts.iloc[i], words)
            p = task.prompt(op) if op else None
            if p and p not in out:
                out.append(p)
            if len(out) == n:
                break
        return out

    evals = [task.prompt()] + distinct(held["completion"], max(n_eval - 1, 0))
    if len(evals) < n_eval:
        raise ValueError(
            f"task {task.name}: only {len(evals)} distinct neutral {words}-word evaluation prompts, {n_eval} asked"
        )
    return Prompts(distinct(task.split()[0]["completion"], n_train), evals[:n_eval])


def load_task(name: str) -> Task:
    """The ``TASK`` of module ``condtune.bench.tasks.<name>``."""
    try:
        module = importlib.import_module(f"condtune.bench.tasks.{name}")
    except ModuleNotFoundError:
        known = sorted(p.stem for p in (Path(__file__).parent / "tasks").glob("*.py") if p.stem != "__init__")
        raise ValueError(f"unknown task {name!r}; the tasks are {known} (condtune/bench/tasks/)") from None
    return module.TASK
