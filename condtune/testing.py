"""Tiny random models with real tokenizers: a 2-layer Llama and a 2-layer BERT, for tests and for
the ``tiny-lm`` / ``tiny-encoder`` smoke-run defaults (:func:`condtune.assets.resolve_model` makes
those once in the cache). Their numbers mean nothing; they run any recipe in seconds.

The lowest model layer: it imports nothing of condtune, so the tokenizer comes as a folder (or an
HF id), e.g. :func:`condtune.assets.smollm2_path` or :func:`condtune.assets.minilm_path`."""

from __future__ import annotations

from pathlib import Path


def tiny_causal_lm(tokenizer, layers: int = 2, hidden: int = 64, seed: int = 0):
    """A small random Llama with the given tokenizer's vocabulary (for tests and smoke runs)."""
    import torch  # deferred: condtune.assets imports this module and stays torch-free
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(cfg)


def save_tiny_causal_lm(out_dir: str | Path, tokenizer_dir: str | Path, **kw) -> Path:
    """Write a tiny random model (:func:`tiny_causal_lm`, ``kw`` its sizes) + the tokenizer of
    ``tokenizer_dir`` (set up as :func:`condtune.modeling.load_tokenizer` sets it) to ``out_dir``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model = tiny_causal_lm(tok, **kw)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def save_tiny_encoder(
    out_dir: str | Path, tokenizer_dir: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0
) -> Path:
    """Write a tiny random BERT encoder + the tokenizer of ``tokenizer_dir`` (the MiniLM one: a fast
    scorer backbone for tests)."""
    import torch  # deferred: condtune.assets imports this module and stays torch-free
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=256,
    )
    out = Path(out_dir)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
