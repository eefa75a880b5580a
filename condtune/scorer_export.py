"""The transformers view of a saved scorer folder, written by :meth:`condtune.scorer.Scorer.save` beside
condtune's own files (``encoder/``, ``head.safetensors``, ``scorer.json``), so that::

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    scores = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits[:, 0]

gives ``Scorer.load(folder).score(texts)`` on the raters' scale:

* ``config.json``: the encoder's config under the model type ``condtune_scorer``, ``auto_map`` naming
  ``modeling_condtune_scorer.py`` (a copy of :mod:`condtune.scorer_hf`), one regression output, and the
  scorer's scale and text rule under ``condtune_scorer``;
* ``model.safetensors.index.json``: the encoder's weights where they already are
  (``encoder/model.safetensors``: stored once) and the head, ``score.safetensors``, whose weights hold the
  de-normalisation (``w * target_sd``, ``b * target_sd + target_mean``);
* the tokenizer, cutting at the scorer's ``max_length`` as condtune does, and ``README.md``, the model card.

:meth:`Scorer.load` reads none of these, so a folder saved before them loads as it did. A README.md or
config.json that no scorer wrote (a user's) is never replaced without ``overwrite``
(:func:`check_not_foreign`)."""

from __future__ import annotations

import errno
import json
import logging
import re
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from condtune.artifacts import TOKENIZER_FILES
from condtune.io import write_json, write_text

log = logging.getLogger(__name__)

HF_CONFIG = "config.json"
HF_INDEX = "model.safetensors.index.json"
HF_HEAD = "score.safetensors"
HF_CODE = "modeling_condtune_scorer.py"
HF_MODEL_TYPE = "condtune_scorer"
CARD = "README.md"
CARD_MARK = "<!-- condtune scorer card: written by Scorer.save, which rewrites it when a scorer is saved here again -->"
HF_TOKENIZER_FILES = (
    *TOKENIZER_FILES,
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "merges.txt",
    "chat_template.jinja",
)
"""the tokenizer files a scorer folder may hold at its top (a copy of ``encoder/``'s, for AutoTokenizer)"""
HF_FILES = (HF_CONFIG, HF_INDEX, HF_HEAD, HF_CODE, CARD, *HF_TOKENIZER_FILES)
"""what makes a scorer folder a transformers model too"""
TEXT_RULE = "text_of(prompt, completion): prompt.rstrip() + '\\n' + completion; the completion alone for a blank prompt"
"""how a scorer that reads the prompt forms its text (condtune's ``text_of``), as its config.json says"""
SCALES = {
    "item": "the mean rating of an item",
    "rater": "an item's mean rating after each rater's ratings were z-scored (rater offsets and scale use removed) "
    "and mapped back to the raters' overall mean and spread",
    "none": "an individual rating",
}
"""what a regression scorer's score means, by its normalisation"""


def write_hf_files(folder: Path, model, tokenizer, meta, *, shown_as: str) -> None:
    """Write the transformers view of the scorer (``model``: a ScorerModel, ``meta``: its ScorerMeta) into
    the scorer folder ``folder`` whose ``encoder/`` is already written; ``shown_as`` names the folder in
    the card's usage lines. An encoder transformers does not export by name (the modeling file could not
    build it), or one not saved as safetensors, gets the card only."""
    import transformers

    encoder = model.encoder
    names = (type(encoder).__name__, type(encoder.config).__name__)
    weights = encoder_weight_map(folder / "encoder")
    exported = getattr(transformers, names[0], None) is type(encoder)
    exported = exported and getattr(transformers, names[1], None) is type(encoder.config)
    if not exported or weights is None:
        log.warning("scorer encoder %s: saved for condtune only (not as a transformers model)", names[0])
        write_text(folder / CARD, scorer_card(meta, shown_as, transformers_view=False))
        return
    write_text(folder / HF_CODE, modeling_code(*names))
    write_head_and_index(folder, model, meta, weights)
    write_json(folder / HF_CONFIG, hf_config(encoder.config.to_dict(), meta))
    tokenizer.save_pretrained(folder)
    tok_config = folder / "tokenizer_config.json"
    if tok_config.is_file():  # truncation=True then cuts where condtune's Scorer.encode does
        d = json.loads(tok_config.read_text(encoding="utf-8"))
        d["model_max_length"] = meta.max_length
        write_json(tok_config, d)
    write_text(folder / CARD, scorer_card(meta, shown_as, transformers_view=True))


def modeling_code(encoder_class: str, config_class: str) -> str:
    """condtune/scorer_hf.py with its ``ENCODER`` and ``ENCODER_CONFIG`` set to the scorer's classes."""
    code = Path(__file__).with_name("scorer_hf.py").read_text(encoding="utf-8")
    for name, value in (("ENCODER", encoder_class), ("ENCODER_CONFIG", config_class)):
        code, n = re.subn(rf'^{name} = ".*"$', f'{name} = "{value}"', code, count=1, flags=re.M)
        if n != 1:
            raise RuntimeError(f"condtune/scorer_hf.py has no {name} line to fill in")
    return code


def encoder_weight_map(encoder_dir: Path) -> dict[str, str] | None:
    """Weight name -> file (relative to the scorer folder) of the saved encoder; None for a format the
    index cannot point at (not safetensors)."""
    single = encoder_dir / "model.safetensors"
    if single.is_file():
        with safe_open(str(single), framework="pt") as f:
            return {k: f"{encoder_dir.name}/{single.name}" for k in f.keys()}
    index = encoder_dir / HF_INDEX
    if index.is_file():
        shards = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {k: f"{encoder_dir.name}/{v}" for k, v in shards.items()}
    return None


def write_head_and_index(folder: Path, model, meta, weights: dict[str, str]) -> None:
    """``score.safetensors`` (the head on the raters' scale) and the index over it and the encoder's file."""
    sd, mean = float(meta.target_sd), float(meta.target_mean)
    head = model.head
    dtype = head.weight.dtype
    save_file(
        {
            "score.weight": (head.weight.detach().cpu().double() * sd).to(dtype).contiguous(),
            "score.bias": (head.bias.detach().cpu().double() * sd + mean).to(dtype).contiguous(),
        },
        str(folder / HF_HEAD),
        metadata={"format": "pt"},
    )
    state = model.encoder.state_dict()
    total = sum(state[k].numel() * state[k].element_size() for k in weights if k in state)
    total += sum(p.numel() * p.element_size() for p in head.parameters())
    weight_map = {**weights, "score.weight": HF_HEAD, "score.bias": HF_HEAD}
    write_json(folder / HF_INDEX, {"metadata": {"total_size": total}, "weight_map": weight_map})


def hf_config(encoder_config: dict, meta) -> dict:
    """config.json: the encoder's config (a dict) as a one-output ``condtune_scorer``, with the scorer's scale."""
    config = {k: v for k, v in encoder_config.items() if k != "_name_or_path"}
    config.update(
        model_type=HF_MODEL_TYPE,
        architectures=["CondtuneScorerForSequenceClassification"],
        auto_map={
            "AutoConfig": "modeling_condtune_scorer.CondtuneScorerConfig",
            "AutoModelForSequenceClassification": "modeling_condtune_scorer.CondtuneScorerForSequenceClassification",
        },
        id2label={"0": "score"},
        label2id={"score": 0},
        problem_type="regression",
        condtune_scorer={
            "objective": meta.objective,
            "normalize": meta.normalize,
            "target_mean": float(meta.target_mean),
            "target_sd": float(meta.target_sd),
            "score_min": meta.score_min,
            "score_max": meta.score_max,
            "max_length": meta.max_length,
            "uses_prompt": meta.uses_prompt,
            "text": TEXT_RULE if meta.uses_prompt else "the completion alone",
        },
    )
    return config


def check_not_foreign(folder: str | Path, written: Path) -> None:
    """Before a scorer in the temporary folder ``written`` replaces the existing ``folder``: each of
    :data:`HF_FILES` that both hold must be a scorer's (``folder``'s config.json of model type
    ``condtune_scorer``, its README.md with the card's mark), or :class:`FileExistsError` names them."""
    folder = Path(folder)
    held = [p.name for p in written.iterdir() if p.name in HF_FILES and (folder / p.name).exists()]
    if not held:
        return
    config = folder / HF_CONFIG
    ours = reads_true(lambda: json.loads(config.read_text(encoding="utf-8"))["model_type"] == HF_MODEL_TYPE)
    card_ours = CARD not in held or reads_true(lambda: CARD_MARK in (folder / CARD).read_text(encoding="utf-8"))
    foreign = held if not ours else [] if card_ours else [CARD]
    if foreign:
        raise FileExistsError(
            errno.EEXIST,
            f"holds {', '.join(sorted(foreign))} that no condtune scorer wrote; nothing was replaced "
            "(overwrite replaces them)",
            str(folder),
        )


def reads_true(check) -> bool:
    """``check()``, False where the file it reads is missing, damaged, not JSON or not an object."""
    try:
        return bool(check())
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ----------------------------------------------------------------------------- the model card


def scorer_card(meta, shown_as: str, *, transformers_view: bool) -> str:
    """The README.md model card of a scorer folder (``meta``: its ScorerMeta)."""
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags:",
        "- condtune",
        "- reward-model",
        "---",
        CARD_MARK,
        "",
        "# condtune scorer",
        "",
        f"A scorer trained on **{meta.trained_on or 'unrecorded data'}** (objective `{meta.objective}`, "
        f"normalisation `{meta.normalize}`), from the encoder `{meta.backbone}`: masked mean pooling over the "
        "encoder's last hidden states and one linear output.",
        "",
        "## Scale",
        "",
        card_scale(meta),
        "",
    ]
    if meta.metrics:
        lines += ["## Held-out metrics", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in meta.metrics.items()]
        lines.append("")
    return "\n".join(lines + card_input(meta) + card_usage(meta, shown_as, transformers_view))


def card_scale(meta) -> str:
    if meta.objective == "bradley_terry":
        return (
            "Bradley-Terry logits: the difference of two scores is the log-odds that raters prefer the first text; "
            "the scale has no fixed origin."
        )
    scale = f"Scores are on the raters' scale: {SCALES.get(meta.normalize, meta.normalize)}"
    if meta.score_min is not None and meta.score_max is not None:
        scale += f" (ratings run from {meta.score_min:g} to {meta.score_max:g})"
    return scale + (
        f". The training targets had mean {meta.target_mean:.4g} and sd {meta.target_sd:.4g}; the model's output "
        "is already mapped back to the raters' scale."
    )


def card_input(meta) -> list[str]:
    lines = ["## Input", ""]
    if meta.uses_prompt:
        lines += [
            "This scorer reads the prompt with the completion. Score the text condtune forms with "
            "`text_of(prompt, completion)`: the prompt with its trailing whitespace removed, a newline, then the "
            "completion; a blank prompt gives the completion alone:",
            "",
            "```python",
            'texts = [f"{p.rstrip()}\\n{c}" if p.strip() else c for p, c in zip(prompts, completions)]',
            "```",
        ]
    else:
        lines.append("This scorer was trained on texts without prompts: score the completion alone.")
    return lines + [
        "",
        f"Texts are tokenized with the tokenizer's defaults (special tokens added), cut at {meta.max_length} tokens.",
        "",
    ]


def card_usage(meta, shown_as: str, transformers_view: bool) -> list[str]:
    lines = ["## Usage", "", "With condtune:", "", "```python", "from condtune.scorer import Scorer"]
    lines += [f"scores = Scorer.load({shown_as!r}).score(texts)", "```", ""]
    if not transformers_view:
        return lines
    return lines + [
        "With transformers alone (`logits[:, 0]` is the score above; the model's code is "
        f"`{HF_CODE}` in this folder, hence `trust_remote_code=True`):",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        f"tokenizer = AutoTokenizer.from_pretrained({shown_as!r}, trust_remote_code=True)",
        f"model = AutoModelForSequenceClassification.from_pretrained({shown_as!r}, trust_remote_code=True)",
        'scores = model(**tokenizer(texts, padding=True, truncation=True, return_tensors="pt")).logits[:, 0]',
        "```",
        "",
        "The tokenizer is a plain one: `trust_remote_code=True` only spares the question transformers 5 asks when "
        "it reads this folder's config.json first. The scores are already on the scale above (`problem_type` "
        "is `regression`: no sigmoid). condtune scores in bf16 autocast on a GPU or a CPU with bf16 "
        "instructions, so its numbers there differ from this float32 model by bf16 rounding.",
        "",
    ]
