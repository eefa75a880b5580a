"""The ``README.md`` of a saved policy: a Hugging Face model card from which a user runs the policy
with plain transformers, without condtune.

It states the base model, the data the policy was trained on, the exact prompt the policy reads (a
literal example for every score bin, built by condtune's one builder,
:func:`condtune.relabel.tagged_prompt`), the bins on the raters' scale and how a score picks one, the
recommended decode, a plain transformers snippet that samples what ``ConditionalPolicy.generate``
samples (plain decoding: guidance off), and, when given, measured results. Written by
:func:`condtune.saved_policy.save_policy` beside the policy card; a policy saved before it has none
and still loads (the policy card, not this README, is what condtune reads)."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Mapping, Sequence

from condtune.assets import MODEL_ALIASES
from condtune.io import atomic_path
from condtune.relabel import TagCard, tagged_prompt

README = "README.md"
EXAMPLE_PROMPT = "Movie review:"
"""the sample prompt of the card's literal examples"""
HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
"""the Hub id of each embedded default (:data:`condtune.assets.MODEL_ALIASES`)"""
DECODE_KEYS = (
    "temperature",
    "top_p",
    "max_new_tokens",
    "repetition_penalty",
    "guidance_scale",
    "anchored",
    "contrast",
)
"""the settings of a recommended decode, in the order the card lists them"""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def hub_model_id(base: str | None) -> str | None:
    """The Hub model id of a base model: an embedded default's (``smollm2-135m``), an id as it is; None
    for a local folder (the Hub refuses a path as ``base_model``) or none."""
    if not base:
        return None
    alias = MODEL_ALIASES.get(base)
    if alias is not None:
        return HUB_IDS.get(alias)
    if Path(base).exists() or base.startswith((".", "/", "~")) or "\\" in base or not _HUB_ID.match(base):
        return None
    return base


def render_model_card(
    card: TagCard,
    base: str | None,
    *,
    dataset: str | None = None,
    decode: Mapping | None = None,
    measured: Sequence[Mapping] | None = None,
    name: str | None = None,
    example_prompt: str = EXAMPLE_PROMPT,
) -> str:
    """The README.md text of a policy trained from ``base`` with the tags of ``card``.

    ``dataset``: the tagged table it was trained on (a path or a Hub name), if known. ``decode``: the
    recommended decode (:data:`DECODE_KEYS`; none: plain sampling). ``measured``: rows of a results
    table (one dict a row, its keys the columns). ``name``: the repo or folder the snippets load."""
    where = name or "PATH_OR_HUB_ID"
    parts = [
        _front_matter(base),
        f"# {Path(name).name if name else 'A score-conditioned policy'}\n\n"
        "A causal LM fine-tuned by condtune (score-conditioned fine-tuning): every training answer was "
        "scored, its score binned, and the bin written as a tag *before* the prompt. Write the tag of the "
        "bin you want before your prompt and the model writes an answer of about that score.\n",
        _base_section(base),
        _data_section(card, dataset),
        _prompt_section(card, example_prompt),
        _bins_section(card),
        _choose_section(card),
        _decode_section(card, decode),
        _snippet_section(card, where, decode, example_prompt),
    ]
    if measured:
        parts.append("## Measured\n\n" + _table(measured))
    parts.append(
        "## Files\n\n"
        "`condtune_policy.json` holds the same facts for condtune (the bins, the tag format, the tags, the base "
        "model); condtune reads it, not this README.\n"
    )
    return "\n".join(parts)


def write_model_card(folder: str | Path, card: TagCard, base: str | None, **kw) -> Path:
    """Write ``folder/README.md`` (atomically) from :func:`render_model_card`."""
    path = Path(folder) / README
    text = render_model_card(card, base, **{"name": str(folder), **kw})
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the sections


def _front_matter(base: str | None) -> str:
    hub_id = hub_model_id(base)
    lines = ["---"]
    if hub_id:
        lines.append(f"base_model: {hub_id}")
    elif base:
        lines.append("# base_model: trained from a local folder (not a Hub id), named below")
    lines += [
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags:",
        "- condtune",
        "- score-conditioned",
        "- controllable-generation",
        "---",
        "",
    ]
    return "\n".join(lines)


def _base_section(base: str | None) -> str:
    hub_id = hub_model_id(base)
    if not base:
        return "## Base model\n\nNot recorded.\n"
    also = f" (the Hub's `{hub_id}`)" if hub_id and hub_id != base else ""
    return f"## Base model\n\nFine-tuned from `{base}`{also}.\n"


def _data_section(card: TagCard, dataset: str | None) -> str:
    meta = card.scorer_meta or {}
    lines = ["## Training data", ""]
    if dataset:
        lines.append(f"- tagged table: `{dataset}`")
    lines.append(f"- rows: {card.n_rows}" if card.n_rows else "- rows: not recorded")
    if card.data_digest:
        lines.append(f"- data digest: `{card.data_digest}` (condtune's digest of the table's text columns)")
    lines.append(f"- scored by: `{card.scorer}`" if card.scorer else "- scored by: not recorded")
    if meta.get("trained_on"):
        lines.append(f"- the scorer learnt the raters' scale from: `{meta['trained_on']}`")
    if meta.get("score_min") is not None and meta.get("score_max") is not None:
        lines.append(f"- the raters' scale: {_num(meta['score_min'])} to {_num(meta['score_max'])}")
    lines.append(f"- score bins: {card.binning.k} ({card.binning.method}), fit on the table's scores")
    return "\n".join(lines) + "\n"


def _prompt_section(card: TagCard, example: str) -> str:
    fmt, k = card.tag_format, card.binning.k
    attrs = _example_tags(card)
    lines = [
        "## Prompt format",
        "",
        "The model reads the tags, then your prompt, with nothing between them (no space, no separator):",
        "",
    ]
    score = f"the score tag of the bin (1..{k}): `{json.dumps(fmt.score_tag('{bin}', k))}`"
    if card.attributes:
        what = "line" if fmt.style == "text" else "token"
        lines += [
            f"- first one tag {what} for each tag, in this order: "
            + ", ".join(
                f"`{json.dumps(fmt.attr_tag(n, '{value}'))}` (values: {', '.join(v)})"
                for n, v in sorted(card.attributes.items())
            ),
            f"- then {score}",
        ]
    else:
        lines.append(f"- {score}")
    if fmt.style == "token":
        lines.append(
            "- each tag is one special token the policy added to its tokenizer; a newline `\\n` follows the last tag"
        )
    lines += [
        "- then your prompt, as it is. Do not end it with a space: condtune trained each answer as a space "
        "followed by the answer, ended by the end-of-text token, so the model writes that space itself; "
        "strip the decoded text.",
        "- The prompt is tokenized **without special tokens** (`add_special_tokens=False`: no BOS added), "
        "with left padding in a batch.",
        "",
        f"The exact text condtune feeds the model for the sample prompt {json.dumps(example)}"
        + (f" (tags {json.dumps(attrs)})" if attrs else "")
        + ", one line per bin, each a JSON string (`\\n` is a newline):",
        "",
        "```text",
    ]
    lines += [f"bin {b + 1}: {json.dumps(tagged_prompt(card, example, bin_index=b, tags=attrs))}" for b in range(k)]
    lines += [
        "```",
        "",
        "Without a score tag (guidance's unconditional prompt, and the rows trained without their score tag): "
        f"{json.dumps(tagged_prompt(card, example, tags=attrs))}.",
    ]
    return "\n".join(lines) + "\n"


def _bins_section(card: TagCard) -> str:
    b = card.binning
    counts = b.counts if len(b.counts) == b.k else None
    head = "| bin | scores (raters' scale) | median score |" + (" training rows |" if counts else "")
    rule = "|---|---|---|" + ("---|" if counts else "")
    rows = []
    for i in range(b.k):
        lo = b.edges[i - 1] if i > 0 else None
        hi = b.edges[i] if i < b.k - 1 else None
        if lo is None:
            span = f"below {_num(hi)}"
        elif hi is None:
            span = f"{_num(lo)} and above"
        else:
            span = f"{_num(lo)} to below {_num(hi)}"
        rows.append(f"| {i + 1} | {span} | {_num(b.centers[i])} |" + (f" {counts[i]} |" if counts else ""))
    return "\n".join(["## Score bins", "", head, rule, *rows]) + "\n"


def _choose_section(card: TagCard) -> str:
    b = card.binning
    return (
        "## Choosing the bin for a score\n\n"
        "A score on the raters' scale is in the bin one above the number of edges at or below it (a score on "
        "an edge goes to the upper bin; scores beyond the ends go to the end bins):\n\n"
        "```python\n"
        f"EDGES = {json.dumps(b.edges)}\n"
        "bin = 1 + sum(score >= edge for edge in EDGES)  # 1..{k}\n"
        "```\n\n"
        "A bin's median is the typical score of its training answers: ask for the bin whose median is nearest "
        "the score you want.\n"
    ).replace("{k}", str(b.k))


def _decode_section(card: TagCard, decode: Mapping | None) -> str:
    d = _decode(decode)
    tags = "".join(f" --tags {shlex.quote(f'{n}={v}')}" for n, v in _example_tags(card).items())
    cmd = f"condtune generate --model DIR --score S{tags} --prompt {json.dumps(EXAMPLE_PROMPT)}"
    where_dir = "DIR: this folder, or a local copy of it: `hf download REPO_ID --local-dir DIR`"
    lines = ["## Recommended decode", ""]
    if decode:
        lines.append("Recorded with this policy: " + ", ".join(f"{k}={d[k]}" for k in DECODE_KEYS if k in d) + ".")
    else:
        lines.append(
            "None recorded: plain sampling from the model (temperature 1, top_p 1, no top-k), the distribution "
            "it was trained to model."
        )
    guided = float(d.get("guidance_scale", 1.0)) != 1.0 or bool(d.get("anchored", False))
    if guided:
        against = "the mirrored bin's tag" if d.get("contrast") == "mirror" else "the prompt without the score tag"
        lines += [
            "",
            "This decode uses condtune's guidance (the requested tag contrasted with "
            f"{against}), which plain `model.generate` does not do by itself: `{cmd}` decodes with it, since the "
            f"recorded decode is `condtune generate`'s default for this policy ({where_dir}); inside plain "
            "transformers, `condtune.hf_decoding.condtune_logits_processor` gives `model.generate` the same "
            "distribution. ",
            "The snippet below is the plain decode (guidance off).",
        ]
    else:
        lines += [
            "",
            "Plain transformers samples as condtune's plain decode does (`condtune generate` without guidance): "
            "the snippet below gives the same tokens for the same seed, batch and precision (condtune samples "
            "under bf16 autocast where the hardware has it, unless `sampling.bf16=false`). condtune's anchored "
            "guidance (the base model writes, moved by the tag) "
            f"needs condtune: `{cmd} --anchored --guidance_scale 2{_sampling_flags(d)}` ({where_dir}).",
        ]
    return "\n".join(lines) + "\n"


def _snippet_section(card: TagCard, where: str, decode: Mapping | None, example: str) -> str:
    d = _decode(decode)
    fmt, k = card.tag_format, card.binning.k
    attrs = _example_tags(card)
    score_tag = json.dumps(fmt.score_tag("\x00", k)).replace("{", "{{").replace("}", "}}").replace("\\u0000", "{b}")
    attr_lines = "".join(json.dumps(fmt.attr_tag(n, v)) + " + " for n, v in sorted(attrs.items()))
    tail = ' + "\\n"' if fmt.style == "token" else ""
    temperature = float(d.get("temperature", 1.0))
    sampling = (
        f"do_sample=True, temperature={temperature}, top_p={float(d.get('top_p', 1.0))}, top_k=0, "
        if temperature > 0
        else "do_sample=False, "  # greedy
    )
    if float(d.get("repetition_penalty", 1.0)) != 1.0:
        sampling += f"repetition_penalty={d['repetition_penalty']}, "
    top = card.binning.centers[-1]
    score = _num(top if math.isfinite(top) else card.binning.edges[-1])
    return (
        "## Use with transformers\n\n"
        "```python\n"
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f"MODEL = {json.dumps(where)}  # this folder, or the Hub id it was pushed to\n"
        "model = AutoModelForCausalLM.from_pretrained(MODEL)\n"
        "tok = AutoTokenizer.from_pretrained(MODEL)\n"
        'tok.padding_side = "left"\n'
        "if tok.pad_token is None:\n"
        "    tok.pad_token = tok.eos_token\n"
        f"EDGES = {json.dumps(card.binning.edges)}\n\n\n"
        "def tagged(prompt, score):\n"
        "    b = 1 + sum(score >= edge for edge in EDGES)\n"
        f"    return {attr_lines}f{score_tag}{tail} + prompt\n\n\n"
        f'enc = tok([tagged({json.dumps(example)}, {score})], return_tensors="pt", padding=True, '
        "add_special_tokens=False)\n"
        "torch.manual_seed(0)\n"
        "out = model.generate(\n"
        "    **enc,\n"
        f"    {sampling}max_new_tokens={int(d.get('max_new_tokens', 48))},\n"
        "    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,\n"
        ")\n"
        'new = out[:, enc["input_ids"].shape[1]:]\n'
        "print([t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)])\n"
        "```\n\n"
        "`top_k=0` matters: transformers samples from the top 50 tokens unless told otherwise, condtune does not.\n"
    )


def retarget(text: str, model_id: str) -> str:
    """A rendered card whose snippet loads ``model_id`` (the Hub id a folder is pushed to)."""
    return re.sub(r"^MODEL = .*$", lambda _: f"MODEL = {json.dumps(model_id)}", text, count=1, flags=re.M)


def _table(rows: Sequence[Mapping]) -> str:
    cols: list[str] = []
    for row in rows:
        cols += [str(c) for c in row if str(c) not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = {str(c): v for c, v in row.items()}
        lines.append("| " + " | ".join(_cell(cells.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- helpers


def _decode(decode: Mapping | None) -> dict:
    return {k: decode[k] for k in DECODE_KEYS if decode and decode.get(k) is not None}


def _sampling_flags(d: Mapping) -> str:
    """The decode's sampling settings as ``condtune generate`` takes them (temperature and top_p 1 unless
    recorded: the command's own defaults differ)."""
    d = {"temperature": 1.0, "top_p": 1.0, **d}
    keys = ("temperature", "top_p", "max_new_tokens", "repetition_penalty")
    return "".join(f" sampling.{k}={d[k]}" for k in keys if k in d)


def _example_tags(card: TagCard) -> dict[str, str]:
    """The tags of the card's examples: each tag at its first value."""
    return {n: v[0] for n, v in sorted(card.attributes.items()) if v}


def _num(x) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _cell(v) -> str:
    return _num(v).replace("|", "\\|").replace("\n", " ")
