"""A saved policy folder: the weights, the tokenizer, ``README.md`` (a model card for plain transformers
users, :mod:`condtune.model_card`) and ``condtune_policy.json``, the policy card (the tag card: bin
edges, tag format, attribute vocabularies; and the base model), so generation maps a requested score to
the right tag without the user knowing the bins. Written by :func:`save_policy` (the card last: it marks
the folder complete), read by :func:`load_policy_card` (which never needs the README: a policy saved
before it existed loads as it did); what inference needs of a policy, without the training code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence

import torch

from condtune.artifacts import ArtifactError, ArtifactMissing, read_json_object
from condtune.io import umask_modes, write_json
from condtune.model_card import write_model_card
from condtune.relabel import TagCard

POLICY_CARD = "condtune_policy.json"


@dataclass(frozen=True)
class Decode:
    """How a policy is meant to be decoded, recorded in its card: ``condtune generate --score S`` (and
    ``ConditionalPolicy.generate``) use it unless told otherwise."""

    anchored: bool = False
    """the base model writes, moved by the tag's contrast (needs the base model the card names)"""
    contrast: Literal["untagged", "mirror"] = "untagged"
    """what the requested tag is contrasted with: the prompt without the score tag, or the mirrored bin's tag"""
    guidance_scale: float = 1.0
    """how far toward the requested score (anchored: 0 = the base model; classifier-free: 1 = off)"""


PLAIN = Decode()
"""sample the policy as trained: what a policy whose card records no decode gets"""
RECIPE = Decode(anchored=True, contrast="mirror", guidance_scale=1.0)
"""the recommended recipe's decode: anchored on the base, against the mirrored bin's tag"""


def save_policy(
    model,
    tokenizer,
    card: TagCard,
    *,
    out_dir: str | Path,
    base: str,
    state_dict: dict | None = None,
    dataset: str | None = None,
    decode: Decode | None = None,
    measured: Sequence[Mapping] | None = None,
) -> Path:
    """Write the weights (``state_dict`` when given: the gathered weights of a sharded run), the
    tokenizer, the model card ``README.md`` (:func:`condtune.model_card.render_model_card`: ``dataset``
    the table trained on, ``decode`` the recommended decode, ``measured`` rows of results, each where
    known) and the policy card; the card goes last (it marks completion)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:
        state_dict = drop_tied_copies(model, state_dict)
    with umask_modes(out_dir):  # safetensors writes 0600 files; the policy's follow the umask
        model.save_pretrained(out_dir, state_dict=state_dict)
        tokenizer.save_pretrained(out_dir)
        record = asdict(decode) if decode is not None else None
        write_model_card(out_dir, card, base, dataset=dataset, decode=record, measured=measured)
    extra = {"decode": record} if record is not None else {}
    write_json(out_dir / POLICY_CARD, {"base_model": base, **extra, **card.to_dict()})
    return out_dir


def drop_tied_copies(model, state_dict: dict) -> dict:
    """A gathered state dict (FSDP) holds a tied output embedding as a second full copy, which
    save_pretrained then writes; drop it, so the policy is saved as a plain run saves it."""
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is None or inp is None or not getattr(model.config, "tie_word_embeddings", False):
        return state_dict
    names = {id(m): n for n, m in model.named_modules()}
    key, tied_to = f"{names.get(id(out))}.weight", f"{names.get(id(inp))}.weight"
    if key in state_dict and tied_to in state_dict and torch.equal(state_dict[key], state_dict[tied_to]):
        return {k: v for k, v in state_dict.items() if k != key}
    return state_dict


def load_policy_card(path: str | Path) -> tuple[TagCard, str | None]:
    """The policy's tag card and base model; a missing, truncated or incomplete card is an
    :class:`~condtune.artifacts.ArtifactError` naming it."""
    p = Path(path) / POLICY_CARD
    if not p.exists():
        raise ArtifactMissing(path, f"not a condtune policy (no {POLICY_CARD}); train one with `condtune train`")
    card = TagCard.read(p, "policy card", skip=("base_model", "decode"))
    base = read_json_object(p, "policy card").get("base_model")
    if base is not None and not isinstance(base, str):
        raise ArtifactError(p, f"base_model must be a model name or folder, got {base!r}")
    return card, base


def load_policy_decode(path: str | Path) -> Decode:
    """The decode a policy's card records (:data:`PLAIN` for a card that records none: a policy saved
    before cards held one decodes as it did); a malformed record is an ArtifactError naming the card."""
    p = Path(path) / POLICY_CARD
    record = read_json_object(p, "policy card").get("decode")
    if record is None:
        return PLAIN
    try:
        decode = Decode(**record)
    except TypeError as exc:
        raise ArtifactError(p, f"decode is not a decode record ({exc})") from None
    if not isinstance(decode.anchored, bool) or decode.contrast not in ("untagged", "mirror"):
        raise ArtifactError(p, f"decode is not a decode record: {record!r}")
    if isinstance(decode.guidance_scale, bool) or not isinstance(decode.guidance_scale, (int, float)):
        raise ArtifactError(p, f"decode.guidance_scale must be a number, got {decode.guidance_scale!r}")
    return decode
