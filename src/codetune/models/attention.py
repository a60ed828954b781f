"""codetune's own attention functions, registered with transformers under their names (with SDPA's masks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def set_attention(model: Any, name: str) -> None:
    """Switch `model` (or the model under a PEFT wrapper) to a registered attention implementation."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        model.set_attn_implementation(name)
    except Exception:  # older transformers: set it on the configs directly
        for module in model.modules():
            config = getattr(module, "config", None)
            if config is not None and hasattr(config, "_attn_implementation"):
                config._attn_implementation = name


def use_attention(model: Any, name: str, forward: Callable[..., Any]) -> None:
    """Register `forward` as attention implementation `name` (masks built as for SDPA; idempotent) and switch
    `model` to it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(name, forward)
    AttentionMaskInterface.register(name, sdpa_mask)
    set_attention(model, name)
