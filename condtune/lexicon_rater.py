"""A judge of another family: VADER's rule-based sentiment analyzer (a lexicon and grammar rules, Hutto
and Gilbert 2014), which shares no model, text or rating with a scorer trained on the ratings. Its
compound score is on [-1, 1]; what it is for is ranking (Spearman against the request), not the
raters' scale."""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np

from condtune.assets import vader_analyzer_dir


class LexiconRater:
    """``LexiconRater().score_pairs(prompts, completions)``: VADER's compound score of each completion
    (the prompt is not read: it is the same for every request)."""

    name = "VADER lexicon (compound, -1..1)"

    def __init__(self):
        path = vader_analyzer_dir() / "vaderSentiment.py"
        spec = importlib.util.spec_from_file_location("condtune_vader_analyzer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.analyzer = module.SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.analyzer.polarity_scores(str(t))["compound"] for t in texts], dtype=float)

    def score_pairs(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        return self.score(completions)
