"""Pieces of the fast generation path that `HFGenerator` uses: left padding to a few widths and, on CUDA, a static KV
cache with torch.compile (CUDA graphs), so each decoding step is one graph replay instead of ~1,000 kernel launches."""

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
    config._compile_all_devices = True  # asked for: transformers would otherwise skip it off CUDA
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
