"""Pieces of the fast generation path that `HFGenerator` uses: left padding to a few widths and, on CUDA, a static KV
cache with torch.compile (CUDA graphs), so each decoding step is one graph replay instead of ~1,000 kernel launches,
and an SDPA attention that reads a grouped-query KV cache without copying it per query head."""

from __future__ import annotations

import math
from typing import Any


def fast_generate_kwargs(model: Any, *, compile: bool | None = None) -> dict[str, Any]:
    """GenerationConfig fields for codetune's fast path: on CUDA (or with compile=True, on any device) a static
    cache, which transformers compiles with CUDA graphs ("reduce-overhead"); elsewhere nothing (compiling on a CPU
    costs more than it saves)."""
    compile = model.device.type == "cuda" if compile is None else compile
    if not compile:
        return {}
    from transformers import CompileConfig

    config = CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead")
    config._compile_all_devices = True  # type: ignore[assignment]  # transformers would otherwise skip it off CUDA
    return {"cache_implementation": "static", "compile_config": config}


def left_pad(prompts: list[list[int]], pad_id: int, multiple: int = 1) -> tuple[Any, Any]:
    """(input_ids, attention_mask) with prompts right-aligned and the width rounded up to `multiple`."""
    import torch

    width = max(len(p) for p in prompts)
    width = math.ceil(width / multiple) * multiple
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        if p:
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
    return ids, mask


DECODE_ATTENTION = "codetune_sdpa"


def grouped_decode_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' SDPA attention, except for one decoding step of a grouped-query model: there the query heads of
    each key/value head are folded into the query-length axis, (batch, kv_heads, groups, dim), so SDPA reads the KV
    cache once. transformers copies the cache `groups` times (`repeat_kv`) whenever a mask is passed, which a static
    cache always does (6 copies for Qwen2.5-Coder-1.5B: ~12 GB a step at batch 41); its later versions fold the same
    way, but not under torch.compile."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    mask = attention_mask
    plain = (
        query.shape[2] != 1
        or groups == 1
        or dropout
        or any(kwargs.get(k) is not None for k in ("position_bias", "softcap", "sinks", "s_aux"))
        or (mask is not None and (mask.dim() != 4 or mask.shape[1] != 1))
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    batch, heads, _, dim = query.shape
    # query head h = kv * groups + g, the order repeat_kv gives the copies
    folded = query.reshape(batch, heads // groups, groups, dim)
    if mask is not None:
        mask = mask[:, :, :, : key.shape[-2]]
    out = torch.nn.functional.scaled_dot_product_attention(folded, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_grouped_decode_attention(model: Any) -> bool:
    """Switch an SDPA model (or the model under a PEFT wrapper) to `grouped_decode_sdpa`; False if it uses another
    attention implementation (left as it is)."""
    from codetune.models.attention import use_attention

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    impl = base.config._attn_implementation
    if impl == DECODE_ATTENTION:
        return True
    if impl != "sdpa":
        return False
    use_attention(base, DECODE_ATTENTION, grouped_decode_sdpa)
    return True
