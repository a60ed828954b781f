"""Describe a model without loading its weights: architecture, parameters, dtype, chat template, location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError
from codetune.hub import go_offline_if_unreachable
from codetune.models.load import gguf_file_for, load_errors, model_failure
from codetune.models.source import resolve


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return None
    try:
        return f.contents()
    except Exception:
        return None


def gguf_info(path: Path) -> dict[str, Any]:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path), "r")
    except Exception as e:
        raise CodetuneError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None
    arch = _field(reader, "general.architecture")
    n_params = sum(int(t.n_elements) for t in reader.tensors)
    output = next((int(t.n_elements) for t in reader.tensors if t.name == "output.weight"), 0)
    types = sorted({t.tensor_type.name for t in reader.tensors})
    return {
        "architecture": arch,
        "name": _field(reader, "general.name"),
        "parameters": n_params,
        "parameters_tied": n_params - output,
        "layers": _field(reader, f"{arch}.block_count"),
        "hidden_size": _field(reader, f"{arch}.embedding_length"),
        "context_length": _field(reader, f"{arch}.context_length"),
        "dtype": f"GGUF ({', '.join(types)}); loads as float32 on CPU, bfloat16 on CUDA",
        "chat_template": _field(reader, "tokenizer.chat_template") is not None,
        "path": str(path),
        "size_bytes": path.stat().st_size,
    }


def hf_info(where: str, revision: str | None = None) -> dict[str, Any]:
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(where, revision=revision)
    except load_errors() as e:
        raise CodetuneError(
            f"{where}: {model_failure('could not read the model config', e, where)}"
        ) from None
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if getattr(config, "tie_word_embeddings", False) and head is not None and head.weight is not embed.weight:
        n -= head.weight.numel()  # empty weights are not tied: the loaded model shares one matrix
    try:
        has_template = AutoTokenizer.from_pretrained(where, revision=revision).chat_template is not None
    except load_errors():
        has_template = False
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or torch.float32
    return {
        "architecture": config.model_type,
        "parameters": n,
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "tie_word_embeddings": getattr(config, "tie_word_embeddings", None),
        "dtype": str(dtype).replace("torch.", ""),
        "chat_template": has_template,
        "path": where,
    }


def model_info(spec: str) -> dict[str, Any]:
    src = resolve(spec)
    gguf = gguf_file_for(src)
    if src.kind == "hub":
        go_offline_if_unreachable()
    info = gguf_info(gguf) if gguf else hf_info(str(src.path or src.name), src.revision)
    return {"model": spec, "kind": src.kind, **info}
