"""The rows conditional SFT trains on (:func:`sft_dataset`: tokenized, own samples as sampled, condition
dropout, the KL term's reference rows, the tag contrast's rows) and the ranking term's pairs
(:func:`scored_pairs`, :func:`pair_bank`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from condtune.relabel import TagCard, tagged_prompt

REF_COLUMNS = ("ref_input_ids", "ref_labels")
ALT_COLUMNS = ("alt_input_ids", "alt_labels", "alt_weight", "alt_target")
"""the columns sft_dataset adds for the KL term's reference and for the tag contrast"""


def sft_dataset(
    df: pd.DataFrame,
    tokenizer,
    max_length: int,
    *,
    condition_dropout: float = 0.0,
    seed: int = 0,
    with_reference: bool = False,
    contrast: TagCard | None = None,
    contrast_pairs: str = "any",
    contrast_temperature: float = 0.0,
):
    """Tokenized rows (``input_ids``, ``labels`` with -100 on the tagged prompt), so trl trains
    exactly these tokens.

    A row with ``completion_ids`` (a model's own sample) is trained as sampled: those ids, with EOS
    only where the model emitted it, never decoded and re-encoded. A text ``completion`` (a human
    text, complete) is encoded after a space and ends with EOS.

    ``condition_dropout``: that share of rows (drawn with ``seed``) reads ``uncond_prompt`` (the
    prompt with its attribute tags but no score tag; default: the plain ``prompt``) instead of the
    tagged one. ``with_reference`` adds ``ref_input_ids``/``ref_labels``: the plain
    prompt and the same answer tokens, for the reference of the KL term. ``contrast`` (the card)
    adds ``alt_input_ids``/``alt_labels``/``alt_weight``/``alt_target``: the same answer under another
    bin's tag (drawn with ``seed``, or the mirrored bin with ``contrast_pairs="mirror"``; weight 0 on
    rows that lost their tag) and the label of the pair (1, or with ``contrast_temperature`` > 0 the
    soft label of the row's ``score``), for the tag-contrast term.
    """
    import datasets

    plain, uncond, own, dropped = _row_inputs(
        df, condition_dropout, seed, needs_prompt=condition_dropout > 0 or with_reference or contrast is not None
    )
    extra = (*(REF_COLUMNS if with_reference else ()), *(ALT_COLUMNS if contrast is not None else ()))
    rows: dict[str, list] = {c: [] for c in ("input_ids", "labels", *extra)}
    if contrast is not None:
        other, target = _contrast_bins(df, contrast, seed, contrast_pairs, contrast_temperature)
        attrs = df["tags"] if "tags" in df.columns else [{}] * len(df)
    for i, (tagged, prompt, untagged, text, sampled, drop) in enumerate(
        zip(df["tagged_prompt"], plain, uncond, df["completion"], own, dropped)
    ):
        p = encode(tokenizer, untagged if drop else tagged)
        alt = p  # without the contrast, only its length enters the cut below
        if contrast is not None:
            alt = encode(tokenizer, tagged_prompt(contrast, prompt, bin_index=int(other[i]), tags=attrs[i]))
        c = answer_ids(tokenizer, text, sampled)[: max(max_length - max(len(p), len(alt)), 0)]
        if contrast is not None:
            rows["alt_input_ids"].append(alt + c)
            rows["alt_labels"].append([-100] * len(alt) + c)
            rows["alt_weight"].append(0.0 if drop else 1.0)
            rows["alt_target"].append(float(target[i]))
        rows["input_ids"].append(p + c)
        rows["labels"].append([-100] * len(p) + c)
        if with_reference:
            r = encode(tokenizer, prompt)
            rows["ref_input_ids"].append(r + c)
            rows["ref_labels"].append([-100] * len(r) + c)
    return datasets.Dataset.from_dict(rows)


def _row_inputs(df: pd.DataFrame, condition_dropout: float, seed: int, *, needs_prompt: bool) -> tuple:
    """Each row's plain prompt, its prompt without the score tag (``uncond_prompt``, default the plain
    one), its own sampled ids (None for a text) and whether condition dropout takes its tags (drawn with
    ``seed``); ``needs_prompt``: the untagged ``prompt`` column must be there."""
    own = df["completion_ids"] if "completion_ids" in df.columns else [None] * len(df)
    dropped = np.random.default_rng(seed).random(len(df)) < condition_dropout
    plain = df["prompt"] if "prompt" in df.columns else df["tagged_prompt"]
    uncond = df["uncond_prompt"] if "uncond_prompt" in df.columns else plain
    if needs_prompt and "prompt" not in df.columns:
        raise ValueError(
            "condition dropout, the KL term and the tag contrast need the untagged 'prompt' column "
            "beside 'tagged_prompt'"
        )
    return plain, uncond, own, dropped


def _contrast_bins(
    df: pd.DataFrame, contrast: TagCard, seed: int, contrast_pairs: str, contrast_temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """The tag contrast's other bin of each row (drawn with ``seed``, or its mirror) and the label of the
    pair (1, or the soft label of the row's score with ``contrast_temperature`` > 0)."""
    if "score_bin" not in df.columns:
        raise ValueError("the tag-contrast term needs the 'score_bin' column of relabelled rows")
    k, bins = contrast.binning.k, df["score_bin"].to_numpy()
    other = (bins + np.random.default_rng(seed + 1).integers(1, k, len(df))) % k  # uniform over the other bins
    if contrast_pairs == "mirror":
        other = np.where(k - 1 - bins != bins, k - 1 - bins, other)
    target = np.ones(len(df))
    if contrast_temperature > 0:
        from condtune.kl_sft import soft_contrast_labels  # kl_sft imports trl

        if "score" not in df.columns:
            raise ValueError("soft contrast labels (contrast_temperature > 0) need the rows' 'score' column")
        centers = np.asarray(contrast.binning.centers, dtype=float)
        target = soft_contrast_labels(df["score"].to_numpy(), centers[bins], centers[other], contrast_temperature)
    return other, target


def answer_ids(tokenizer, text: str, sampled=None) -> list[int]:
    """The tokens an answer is trained as: a model's own sample as sampled (``sampled``, its ids, EOS
    only where the model emitted it), or a text (a human text, complete) encoded after a space and
    ended with EOS."""
    if isinstance(sampled, (list, tuple, np.ndarray)):  # NaN/None where a row has no sampled ids
        return [int(t) for t in sampled]
    return encode(tokenizer, text if text.startswith((" ", "\n")) else " " + text) + [tokenizer.eos_token_id]


def encode(tokenizer, text: str) -> list[int]:
    """``text``'s token ids, without the special tokens a tokenizer may add (the rows add their own)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def scored_pairs(pairs: pd.DataFrame, margin: float, *, source: str = "pairs") -> np.ndarray:
    """The within-prompt pairs (:func:`condtune.kl_sft.within_prompt_pairs`) of a table of several
    answers a prompt (``prompt``, ``completion`` or ``completion_ids``, ``score``), after checking it;
    ``source`` names the table in errors."""
    from condtune.kl_sft import within_prompt_pairs  # kl_sft imports trl

    missing = [c for c in ("prompt", "score") if c not in pairs.columns]
    if "completion" not in pairs.columns and "completion_ids" not in pairs.columns:
        missing.append("completion")
    if missing:
        raise ValueError(f"{source}: the pairwise term needs the columns {missing}; it has {list(pairs.columns)}")
    scores = pd.to_numeric(pairs["score"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"{source}: row {row}: 'score' is {pairs['score'].iloc[row]!r}, not a finite number")
    found = within_prompt_pairs(scores, pairs["prompt"].to_numpy(), margin)
    if len(found) == 0:
        raise ValueError(
            f"{source}: no two answers to one prompt differ in score by more than {margin} "
            f"({len(pairs)} answers, {pairs['prompt'].nunique()} prompts): the pairwise term needs several "
            "answers a prompt (or a lower sft.pairwise_margin)"
        )
    return found


def pair_bank(pairs: pd.DataFrame, found: np.ndarray, tokenizer, card: TagCard, max_length: int):
    """The :class:`condtune.kl_sft.PairBank` of the answers of ``pairs`` and their pairs ``found``
    (:func:`scored_pairs`): each answer under the card's top and bottom bin's tag (and its attribute
    ``tags``, where the card has attributes), cut to ``max_length`` tokens."""
    from condtune.kl_sft import PairBank  # kl_sft imports trl

    k = card.binning.k
    attrs = pairs["tags"] if card.attributes and "tags" in pairs.columns else [{}] * len(pairs)
    texts = pairs["completion"] if "completion" in pairs.columns else [""] * len(pairs)
    own = pairs["completion_ids"] if "completion_ids" in pairs.columns else [None] * len(pairs)

    top, bottom, answers = [], [], []
    for prompt, a, text, sampled in zip(pairs["prompt"], attrs, texts, own):
        t = encode(tokenizer, tagged_prompt(card, prompt, bin_index=k - 1, tags=a))
        b = encode(tokenizer, tagged_prompt(card, prompt, bin_index=0, tags=a))
        top.append(t)
        bottom.append(b)
        answers.append(answer_ids(tokenizer, text, sampled)[: max(max_length - max(len(t), len(b)), 1)])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PairBank(top=top, bottom=bottom, answers=answers, pairs=found, pad_token_id=pad)
