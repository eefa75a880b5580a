"""Every saved policy carries a README.md model card from which a plain transformers user samples what
condtune samples: the card's literal prompt for each bin, its edges and its snippet, read from the
README (never from condtune's prompt builder), give ``ConditionalPolicy.generate``'s tokens exactly
(plain decode: guidance off). A policy saved before the README existed still loads, and pushing to an
unreachable hub is a one-line ConfigError naming the repo (no test reaches the network)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

import condtune.hub as hub
from condtune.artifacts import ArtifactMissing
from condtune.config import ConfigError
from condtune.generate import ConditionalPolicy
from condtune.model_card import README, hub_model_id, render_model_card
from condtune.relabel import relabel, tagged_prompt
from condtune.sampling import SamplingConfig
from condtune.tags import TagFormat

K = 4
EXAMPLE = "Movie review:"
TAGS = {"site": "imdb"}  # the card's examples show each tag at its first value
PROMPTS = ["Movie review:", "Film:", "Review of the film, in a few words:"]  # lengths differ: left padding
MAX_NEW = 12


@pytest.fixture(scope="module", params=["text", "token"])
def policy_dir(request, tmp_path_factory, tiny_lm):
    """A tiny policy trained (two steps) on 12 relabelled rows with 4 score bins and a ``site`` tag, saved
    as ``condtune train`` saves it."""
    from condtune.modeling import load_causal_lm
    from condtune.policy import SFTSettings, train_conditional

    df = pd.DataFrame(
        {
            "prompt": ["Movie review:", "Film:", "Review of the film:"] * 4,
            "completion": [f"Answer number {i}." for i in range(12)],
            "site": ["imdb", "rotten"] * 6,
        }
    )
    tagged, card = relabel(
        df,
        None,
        num_bins=K,
        tag_format=TagFormat(style=request.param),
        tag_columns=["site"],
        scores=np.linspace(-1.0, 1.0, 12),
        scorer_name="runs/scorer",
    )
    model, tok = load_causal_lm(tiny_lm)
    out = tmp_path_factory.mktemp(f"card_{request.param}") / "policy"
    s = SFTSettings(max_steps=2, per_device_train_batch_size=4, max_length=32, learning_rate=1e-3)
    train_conditional(model, tok, tagged, card=card, s=s, out_dir=out, base=str(tiny_lm))
    return out


def readme(folder) -> str:
    return (folder / README).read_text(encoding="utf-8")


def literal_prompts(text: str) -> dict[int, str]:
    """The README's literal prompt of each bin (its lines ``bin N: "<JSON string>"``)."""
    return {int(b): json.loads(s) for b, s in re.findall(r'^bin (\d+): (".*")$', text, flags=re.M)}


def stated_edges(text: str) -> list[float]:
    (line,) = set(re.findall(r"^EDGES = (\[.*\])$", text, flags=re.M))
    return json.loads(line)


def test_a_saved_policy_has_a_model_card(policy_dir):
    text = readme(policy_dir)
    front = text.split("---\n")[1]
    assert text.startswith("---\n") and "library_name: transformers" in front and "tags:\n- condtune\n" in front
    assert "base_model" in front  # a local base folder is named, as a comment: the Hub refuses a path there
    policy = ConditionalPolicy.load(policy_dir)
    card = policy.card
    assert literal_prompts(text) == {
        b + 1: tagged_prompt(card, EXAMPLE, bin_index=b, tags=TAGS) for b in range(K)
    }  # the exact string condtune feeds the model, for each bin
    assert stated_edges(text) == card.binning.edges
    assert "add_special_tokens=False" in text and "top_k=0" in text and "condtune generate --model DIR" in text
    for b in range(K):  # the bins table: number, range, median on the raters' scale
        assert re.search(rf"^\| {b + 1} \| .* \| {card.binning.centers[b]:.4g} \| 3 \|$", text, flags=re.M)
    assert "runs/scorer" in text and f"rows: {card.n_rows}" in text


def load_plain(folder):
    """The folder as a transformers user loads it: the Auto classes, left padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def plain_generate(model, tok, prompts: list[str], seed: int) -> list[list[int]]:
    """What a transformers user runs: the prompts left padded and tokenized without special tokens,
    plain sampling (temperature 1, top_p 1, no top-k); each completion's tokens up to its first EOS."""
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        max_new_tokens=MAX_NEW,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    rows = out[:, enc["input_ids"].shape[1] :].tolist()
    eos = tok.eos_token_id
    return [r[: r.index(eos) + 1] if eos in r else r for r in rows]


def test_plain_transformers_reproduces_condtune_from_the_readme_alone(policy_dir):
    text = readme(policy_dir)
    literal, edges = literal_prompts(text), stated_edges(text)
    policy = ConditionalPolicy.load(policy_dir)
    centers = policy.card.binning.centers
    model, tok = load_plain(policy_dir)
    plain_sampling = SamplingConfig(max_new_tokens=MAX_NEW, temperature=1.0, top_p=1.0, bf16=False)
    for score, seed in ((centers[0], 3), (centers[-1], 7), (0.1, 11)):
        b = 1 + sum(score >= e for e in edges)  # the README's rule
        prefix = literal[b].removesuffix(EXAMPLE)  # the README's literal example, less its sample prompt
        assert literal[b] == prefix + EXAMPLE
        by_hand = plain_generate(model, tok, [prefix + p for p in PROMPTS], seed)
        ours = policy.generate(
            PROMPTS,
            score=score,
            tags=TAGS,
            num_return_sequences=1,
            seed=seed,
            sampling=plain_sampling,
            progress=False,
        )
        assert by_hand == [row[0] for row in ours.response_ids]
        assert all(len(r) > 0 for r in by_hand)


def test_the_readme_snippet_runs_as_written(policy_dir):
    """The card's transformers snippet, executed verbatim, samples the tokens condtune samples."""
    text = readme(policy_dir)
    (code,) = re.findall(r"## Use with transformers\n\n```python\n(.*?)```", text, flags=re.S)
    code = code.replace("print(", "(")  # keep the test's output quiet
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own snippet
    policy = ConditionalPolicy.load(policy_dir)
    ours = policy.generate(
        [EXAMPLE],
        score=policy.card.binning.centers[-1],
        tags=TAGS,
        num_return_sequences=1,
        seed=0,
        sampling=SamplingConfig(max_new_tokens=48, temperature=1.0, top_p=1.0, bf16=False),
        progress=False,
    )
    eos = policy.tokenizer.eos_token_id
    (row,) = scope["new"].tolist()
    assert (row[: row.index(eos) + 1] if eos in row else row) == ours.response_ids[0][0]


def test_a_policy_saved_without_a_readme_still_loads(policy_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(policy_dir, old)
    (old / README).unlink()
    assert ConditionalPolicy.load(old).card.binning.k == K


def test_the_card_names_a_hub_base_renders_the_decode_and_measured_rows():
    from condtune.relabel import TagCard
    from condtune.tags import Binning

    card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[4, 4]), TagFormat())
    text = render_model_card(
        card,
        "smollm2-135m",
        decode={"temperature": 0.7, "guidance_scale": 2.0, "anchored": True},
        measured=[{"requested": 1.0, "achieved": 0.8125, "note": "a|b"}, {"requested": -1.0, "achieved": -0.5}],
    )
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\n" in text.split("---\n")[1]
    assert "temperature=0.7, guidance_scale=2.0, anchored=True" in text
    assert "condtune_logits_processor" in text and "the prompt without the score tag" in text
    mirrored = render_model_card(card, None, decode={"guidance_scale": 1.0, "anchored": True, "contrast": "mirror"})
    assert "contrast=mirror" in mirrored and "the mirrored bin's tag" in mirrored
    assert "| requested | achieved | note |" in text and "| 1 | 0.8125 | a\\|b |" in text and "| -1 | -0.5 |  |" in text
    assert "## Measured" not in render_model_card(card, None)
    assert hub_model_id("org/model") == "org/model" and hub_model_id("/tmp/x") is None and hub_model_id(None) is None


class FakeApi:
    """HfApi's two calls, recorded; nothing reaches the network."""

    calls: list = []
    fail: Exception | None = None

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kw):
        if FakeApi.fail is not None:
            raise FakeApi.fail
        FakeApi.calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw):
        FakeApi.calls.append(("upload_folder", kw["repo_id"], kw))


def test_push_policy_creates_the_repo_and_uploads_the_folder(policy_dir, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "p"
    shutil.copytree(policy_dir, folder)
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setattr(FakeApi, "calls", [])
    assert hub.push_policy(folder, "me/tiny-policy", token="t") == "https://huggingface.co/me/tiny-policy"
    (_, repo, kw), (_, up_repo, up) = FakeApi.calls
    assert repo == up_repo == "me/tiny-policy" and kw["exist_ok"] is True and up["folder_path"] == str(folder)
    assert 'MODEL = "me/tiny-policy"' in readme(folder)  # the snippet loads the pushed repo
    with pytest.raises(ArtifactMissing):
        hub.push_policy(tmp_path, "me/tiny-policy")  # not a policy: nothing is pushed


def test_push_policy_to_an_unreachable_hub_is_one_config_error(policy_dir, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    folder = tmp_path / "p"
    shutil.copytree(policy_dir, folder)
    # offline mode: huggingface_hub itself refuses every request before it is sent
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as offline:
        hub.push_policy(folder, "me/tiny-policy")
    # no network: the client's connection error
    monkeypatch.setattr(hub, "HfApi", FakeApi)
    monkeypatch.setattr(FakeApi, "fail", ConnectionError("Failed to resolve 'huggingface.co'"))
    with pytest.raises(ConfigError) as unreachable:
        hub.push_policy(folder, "me/tiny-policy")
    for exc in (offline.value, unreachable.value):
        msg = str(exc)
        assert "me/tiny-policy" in msg and "cannot reach the Hugging Face Hub" in msg and "\n" not in msg
    assert "offline" in str(offline.value).lower() and "Failed to resolve" in str(unreachable.value)
