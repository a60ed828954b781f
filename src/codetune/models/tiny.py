"""Tiny random-init Qwen2 models with the real Qwen2.5 tokenizer (shipped in the package), and random LoRA adapters,
for fast tests and benchmarks."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any


def copy_qwen_tokenizer(dest: str | Path) -> Path:
    """Write the real Qwen2.5-Coder tokenizer (with its chat template) into `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    assets = resources.files("codetune.models") / "assets" / "qwen2.5-coder-tokenizer"
    with resources.as_file(assets) as src:
        with gzip.open(src / "tokenizer.json.gz", "rb") as f, open(dest / "tokenizer.json", "wb") as out:
            shutil.copyfileobj(f, out)
        for name in ("tokenizer_config.json", "chat_template.jinja"):
            shutil.copy(src / name, dest / name)
    return dest


def make_tiny_model(
    dest: str | Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """Save a random-init Qwen2ForCausalLM folder (real vocabulary size) plus the real tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    dest = Path(dest)
    copy_qwen_tokenizer(dest)
    tok = AutoTokenizer.from_pretrained(dest)
    vocab = tok.get_vocab()
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(dest, safe_serialization=True)
    return dest


def save_random_adapter(
    model: Any,
    dest: str | Path,
    *,
    targets: Sequence[str],
    r: int = 4,
    alpha: int = 8,
    std: float | None = 2.0,
    seed: int | None = None,
    use_dora: bool = False,
) -> Path:
    """Attach a LoRA adapter to `model`, draw its B matrices from N(0, std) (seeded when `seed` is given; `std=None`
    keeps LoRA's zero init, an adapter that changes nothing), save it to `dest` and detach it again."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        model, LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), use_dora=use_dora)
    )
    if std is not None:
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, std)
    peft_model.save_pretrained(str(dest))
    peft_model.unload()
    return Path(dest)
