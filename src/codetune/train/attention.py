"""Flash varlen attention for padding-free batches, registered with transformers as `codetune_varlen`.

With `cu_seq_lens_q` in the attention kwargs, each example attends only to itself through
`torch.nn.attention.varlen.varlen_attn` (CUDA); without them, or where that kernel is missing or fails its self-test,
it is SDPA (with a block-diagonal causal mask rebuilt from `cu_seq_lens_q` when the caller skipped the mask).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

ATTENTION = "codetune_varlen"
VARLEN_STATE: dict[str, Any] = {}  # "device:dtype" -> True or the reason the kernel is not used


def _varlen_fn() -> Any:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


_PARAMS: dict[
    Any, frozenset[str]
] = {}  # varlen_attn -> its parameter names (a plain dict: torch.compile traces it)


def _parameters(fn: Any) -> frozenset[str]:
    if fn not in _PARAMS:
        _PARAMS[fn] = frozenset(inspect.signature(fn).parameters)
    return _PARAMS[fn]


def _call_varlen(fn: Any, q: Any, k: Any, v: Any, cu: Any, max_len: int, scale: float) -> Any:
    """varlen_attn on (T, H, D) tensors, causal, across the signatures of torch 2.9 to 2.13."""
    params = _parameters(fn)
    kw: dict[str, Any] = {}
    if "window_size" in params:
        kw["window_size"] = (-1, 0)
    elif "is_causal" in params:
        kw["is_causal"] = True
    else:
        raise RuntimeError("varlen_attn has neither window_size nor is_causal")
    if "scale" in params:
        kw["scale"] = scale
    elif not math.isclose(scale, q.shape[-1] ** -0.5, rel_tol=1e-6):
        raise RuntimeError("varlen_attn takes no scale and the model's scale is not the default")
    if k.shape[1] != q.shape[1]:
        if "enable_gqa" in params:
            kw["enable_gqa"] = True
        else:
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    return fn(q, k, v, cu, cu, max_len, max_len, **kw)


def _reference_varlen(q: Any, k: Any, v: Any, cu: Any, scale: float) -> Any:
    """Per-example causal SDPA on (T, H, D) tensors: the ground truth for the varlen kernel."""
    import torch
    import torch.nn.functional as F

    rep = q.shape[1] // k.shape[1]
    out = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        qs, ks, vs = (t[a:b].transpose(0, 1).float() for t in (q, k, v))
        ks, vs = ks.repeat_interleave(rep, dim=0), vs.repeat_interleave(rep, dim=0)
        out.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scale).transpose(0, 1))
    return torch.cat(out).to(q.dtype)


def varlen_ready(device: Any, dtype: Any) -> bool:
    """True when the flash varlen kernel runs here and matches per-example SDPA (checked once per device and dtype)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or dtype not in (torch.float16, torch.bfloat16):
        return False
    key = f"{device}:{dtype}"
    if key not in VARLEN_STATE:
        VARLEN_STATE[key] = _self_test(device, dtype)
    return VARLEN_STATE[key] is True


def _self_test(device: Any, dtype: Any) -> bool | str:
    import torch

    fn = _varlen_fn()
    if fn is None:
        return "torch.nn.attention.varlen is missing"
    try:
        g = torch.Generator(device="cpu").manual_seed(0)
        cu = torch.tensor([0, 37, 40, 101], dtype=torch.int32, device=device)
        q = torch.randn(101, 6, 64, generator=g).to(device, dtype).requires_grad_()
        k = torch.randn(101, 2, 64, generator=g).to(device, dtype).requires_grad_()
        v = torch.randn(101, 2, 64, generator=g).to(device, dtype).requires_grad_()
        out = _call_varlen(fn, q, k, v, cu, 61, 0.125)
        out.float().sum().backward()
        ref = _reference_varlen(q.detach(), k.detach(), v.detach(), cu, 0.125)
        err = (out.detach().float() - ref.float()).abs().max().item()
        grads = (q.grad, k.grad)
        if not (err < 2e-2 and all(d is not None and torch.isfinite(d).all() for d in grads)):
            return f"varlen_attn differs from SDPA by {err:.3g}"
    except Exception as e:  # any kernel or signature problem means: use SDPA with a block mask
        return f"{type(e).__name__}: {str(e)[:200]}"
    return True


def _block_causal_mask(cu: Any, total: int, device: Any) -> Any:
    import torch

    seq = torch.repeat_interleave(
        torch.arange(cu.numel() - 1, device=device), (cu[1:] - cu[:-1]).to(device).long()
    )
    pos = torch.arange(total, device=device)
    return ((seq[:, None] == seq[None, :]) & (pos[:, None] >= pos[None, :]))[None, None]


def varlen_attention_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """AttentionInterface function: flash varlen for padding-free batches (cu_seq_lens_q given), else SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    dtype = query.dtype
    if dtype == torch.float32 and torch.is_autocast_enabled(query.device.type):
        dtype = torch.get_autocast_dtype(query.device.type)
    usable = dropout == 0.0 and sliding_window is None and query.shape[-1] <= 256
    if usable and varlen_ready(query.device, dtype):
        q, k, v = (t[0].transpose(0, 1).to(dtype).contiguous() for t in (query, key, value))
        max_len = kwargs.get("max_length_q") or int((cu[1:] - cu[:-1]).max())
        out = _call_varlen(_varlen_fn(), q, k, v, cu.to(torch.int32), int(max_len), scale)
        return out.to(query.dtype).unsqueeze(0), None
    if attention_mask is None:  # the backbone skipped the mask: rebuild it so examples stay apart
        attention_mask = _block_causal_mask(cu, query.shape[2], query.device)
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )
