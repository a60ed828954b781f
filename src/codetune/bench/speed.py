"""Fast batched greedy generation: prompts batched by length, left-padded to a few shapes, and on CUDA a static KV
cache with torch.compile (CUDA graphs), so each decoding step is one graph replay instead of ~1,000 kernel launches."""

from __future__ import annotations

import math
from typing import Any


def length_batches(lengths: list[int], max_batch: int) -> list[list[int]]:
    """Indices of `lengths`, longest first, split into as few equal-sized batches of at most `max_batch` as possible
    (equal sizes keep the compiled shapes few; similar lengths keep left padding short)."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if not order:
        return []
    n = math.ceil(len(order) / max_batch)
    size = math.ceil(len(order) / n)
    return [order[i : i + size] for i in range(0, len(order), size)]


def fast_generate_kwargs(model: Any, *, compile: bool | None = None) -> dict[str, Any]:
    """`generate` kwargs for codetune's fast path: on CUDA (or with compile=True) a static cache, which transformers
    compiles with CUDA graphs ("reduce-overhead"); elsewhere nothing (compiling on CPU costs more than it saves)."""
    compile = model.device.type == "cuda" if compile is None else compile
    if not compile:
        return {}
    from transformers import CompileConfig

    return {
        "cache_implementation": "static",
        "compile_config": CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead"),
    }


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


def generate_batched(
    model: Any,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    pad_token_id: int,
    eos_token_id: int | list[int] | None = None,
    max_batch: int = 64,
    pad_multiple: int | None = None,
    fast: bool = True,
    stop_at_eos: bool = True,
    **generate_kwargs: Any,
) -> list[list[int]]:
    """Greedy (unless generate_kwargs say otherwise) completions of token-id prompts, in the prompts' order.
    Each completion is cut after its first EOS when `stop_at_eos`. One completion per prompt (repeat a prompt for
    several samples). `pad_multiple` (default 64 when compiled, else 1) rounds the padded width so batches share
    compiled shapes."""
    import torch

    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or [])
    fast_kwargs = fast_generate_kwargs(model) if fast else {}
    kwargs = {"do_sample": False, **fast_kwargs, **generate_kwargs}
    if pad_multiple is None:
        pad_multiple = 64 if fast_kwargs else 1
    if not kwargs.get("do_sample"):
        kwargs.update(temperature=None, top_p=None, top_k=None)
    results: list[list[int]] = [[] for _ in prompts]
    for batch in length_batches([len(p) for p in prompts], max_batch):
        ids, mask = left_pad([prompts[i] for i in batch], pad_token_id, pad_multiple)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=pad_token_id,
                eos_token_id=eos_token_id,
                **kwargs,
            )
        for row, i in zip(out[:, ids.shape[1] :].tolist(), batch, strict=True):
            if stop_at_eos:
                cut = next((k for k, t in enumerate(row) if t in eos), None)
                row = row if cut is None else row[: cut + 1]
            results[i] = row
    return results
