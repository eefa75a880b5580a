"""Loading causal LMs and tokenizers (embedded defaults, HF ids, local dirs), LoRA setup, the
processes of a job, CPU threading and bf16 autocast. Tiny test models: :mod:`condtune.testing`."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch

from condtune.artifacts import check_model_ref, loading
from condtune.assets import resolve_model
from condtune.errors import ConfigError
from condtune.io import umask_modes

log = logging.getLogger(__name__)


def load_tokenizer(name_or_path: str | Path, padding_side: str = "left"):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_causal_lm(name_or_path: str | Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from an embedded-default name, an HF id or a local directory."""
    from transformers import AutoModelForCausalLM

    # a local folder (a policy, a saved model) is checked first: damaged files are a clear error naming
    # them; so is a path to nothing; what the loaders still raise (an HF id not in the cache) is one too
    path = check_model_ref(name_or_path)
    with loading(path, "model folder" if Path(path).is_dir() else "model"):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        tok = load_tokenizer(path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def model_dir(name_or_path: str | Path, save_to: str | Path) -> str:
    """The model as a local directory: an embedded default's cached dir or a local dir as it is, an
    HF id saved once to ``save_to``. trl rebuilds a trainer's reference model from
    ``config._name_or_path``, so the DPO and RLOO commands train from a directory."""
    path = check_model_ref(name_or_path)
    if Path(path).is_dir():
        return path
    if not (Path(save_to) / "config.json").exists():
        model, tok = load_causal_lm(path)
        Path(save_to).mkdir(parents=True, exist_ok=True)
        with umask_modes(save_to):
            model.save_pretrained(save_to)
            tok.save_pretrained(save_to)
    return str(save_to)


LORA_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
"""the attention projections of Llama-style models (SmolLM2, Llama, Qwen, Mistral)"""
LORA_ATTENTION_MLP = LORA_ATTENTION + ["gate_proj", "up_proj", "down_proj"]
"""attention and MLP projections: every linear layer of a Llama-style block"""


def lora_config(r: int, alpha: int, target_modules: list[str], *, modules_to_save: list[str] | None = None):
    """The one LoRA setup of condtune (conditional SFT and PPO): adapters of rank ``r`` on
    ``target_modules``, no dropout; ``modules_to_save`` are trained in full (new tag embeddings)."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        target_modules=list(target_modules),
        modules_to_save=modules_to_save or None,
    )


def cpu_supports_bf16() -> bool:
    """True when bf16 autocast on this CPU is worth it (AVX512-BF16 / AMX present)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def autocast(enabled: bool | None = None):
    """bf16 autocast on CUDA, or on a CPU that has bf16 instructions; a no-op otherwise."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if enabled is None:
        enabled = device == "cuda" or cpu_supports_bf16()
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def processes():
    """The processes of this job (accelerate's ``PartialState``): one, or each of a data-parallel launch
    (``accelerate launch`` / ``torchrun``), over gloo on CPU and NCCL on GPUs."""
    from accelerate import PartialState

    check_launcher_env()
    return PartialState(cpu=not torch.cuda.is_available())


LAUNCHER_INTS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_PORT")
"""the variables a launcher (torchrun, accelerate launch) sets, each a whole number"""


def check_launcher_env(env: dict[str, str] | None = None) -> None:
    """A launcher's environment, checked before a process group is made from it: each of
    :data:`LAUNCHER_INTS` that is set must be a whole number >= 0, and a rank below the world size.
    A malformed one is a :class:`~condtune.config.ConfigError` naming the variable."""
    env = dict(os.environ if env is None else env)
    values = {}
    for name in LAUNCHER_INTS:
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if not raw.strip().isdigit():
            raise ConfigError(f"environment: {name}={raw!r} is not a whole number >= 0 (set by torchrun/accelerate)")
        values[name] = int(raw)
    for rank, size in (("RANK", "WORLD_SIZE"), ("LOCAL_RANK", "LOCAL_WORLD_SIZE")):
        if rank in values and size in values and values[rank] >= values[size]:
            raise ConfigError(f"environment: {rank}={values[rank]} must be below {size}={values[size]}")


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
