"""The padding-free decoder: a padded batch runs as one row of real tokens, each example attending only to itself
(varlen flash attention on CUDA, SDPA with a block mask elsewhere), and `compare_paths` checks it against the plain
padded forward (same loss, no cross-example leakage)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from codetune.models.attention import set_attention, use_attention
from codetune.train import attention as attn
from codetune.train.attention import ATTENTION


def backbone_of(model: Any) -> Any:
    if hasattr(model, "get_base_model"):  # PEFT wrapper
        model = model.get_base_model()
    return getattr(model, model.base_model_prefix, model)


def unpad_backbone(model: Any, *, device: str = "cpu", bucket: int = 0) -> None:
    """Make the decoder drop pad tokens: a padded (B, L) batch runs as one (1, T) row of real tokens, each example
    attending only to itself, and the hidden states are scattered back to (B, L, H) with zeros at pad positions.
    Batches without padding, with a cache or with inputs_embeds pass through unchanged. `bucket`: the row is filled
    up to a multiple of it (and the longest-example bound to a power of two), so compiled layers see few shapes."""
    backbone = backbone_of(model)
    backbone._codetune_bucket = bucket
    if getattr(backbone, "_codetune_unpad", False):
        return
    original = backbone.forward
    layer_types = set(getattr(backbone.config, "layer_types", None) or ["full_attention"])

    def forward(
        self: Any, input_ids: Any = None, attention_mask: Any = None, position_ids: Any = None, **kwargs: Any
    ) -> Any:
        import torch

        cached = (
            kwargs.get("use_cache")
            or kwargs.get("cache") is not None
            or kwargs.get("past_key_values") is not None
        )
        if (
            input_ids is None
            or attention_mask is None
            or not torch.is_tensor(attention_mask)
            or attention_mask.dim() != 2
            or cached
            or kwargs.get("inputs_embeds") is not None
            or "cu_seq_lens_q" in kwargs
        ):
            return original(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs
            )
        keep = attention_mask.bool()
        batch, length = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(length, device=input_ids.device).expand(batch, length)
        lengths = keep.sum(1)
        lengths = lengths[lengths > 0]
        cu = torch.nn.functional.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
        max_len = int(lengths.max()) if lengths.numel() else 0
        flat_ids = input_ids[keep].unsqueeze(0)
        flat_pos = position_ids.expand(batch, length)[keep].unsqueeze(0)
        real = flat_ids.shape[1]
        bucket = getattr(self, "_codetune_bucket", 0)
        if bucket:
            # A row of a few sizes (CUDA graphs are recorded once per size): a filler example takes the rest.
            extra = -real % bucket
            if extra:
                flat_ids = torch.nn.functional.pad(flat_ids, (0, extra))
                filler = torch.arange(extra, device=flat_pos.device, dtype=flat_pos.dtype)
                flat_pos = torch.cat([flat_pos, filler[None]], 1)
                cu = torch.cat([cu, cu.new_full((1,), real + extra)])
            max_len = 1 << (max(max_len, extra) - 1).bit_length()
        dtype = self.get_input_embeddings().weight.dtype
        if torch.is_autocast_enabled(flat_ids.device.type):
            dtype = torch.get_autocast_dtype(flat_ids.device.type)
        mask: Any = None
        if self.config._attn_implementation == ATTENTION and attn.varlen_ready(flat_ids.device, dtype):
            mask = dict.fromkeys(layer_types)  # varlen needs no mask: skip building a (T, T) one
        kwargs["use_cache"] = False
        out = original(
            input_ids=flat_ids,
            attention_mask=mask,
            position_ids=flat_pos,
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=max_len,
            max_length_k=max_len,
            **kwargs,
        )

        def repad(h: Any) -> Any:
            full = h.new_zeros(batch, length, h.shape[-1])
            return full.masked_scatter(keep[..., None], h[0, :real])

        out.last_hidden_state = repad(out.last_hidden_state)
        if getattr(out, "hidden_states", None) is not None:
            out.hidden_states = tuple(repad(h) for h in out.hidden_states)
        return out

    backbone.forward = types.MethodType(forward, backbone)
    backbone._codetune_unpad = True
    backbone._codetune_original_forward = original
    if device.startswith("cuda"):
        use_attention(model, ATTENTION, attn.varlen_attention_forward)


@contextmanager
def plain_path(model: Any) -> Iterator[None]:
    """Temporarily undo `unpad_backbone` and use SDPA (to compare the fast path with the plain one)."""
    backbone = backbone_of(model)
    patched = backbone.__dict__.get("forward")
    impl = backbone.config._attn_implementation
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if patched is not None:
        del backbone.forward
    if impl == ATTENTION:
        set_attention(base, "sdpa")
    try:
        yield model
    finally:
        if patched is not None:
            backbone.forward = patched
        if impl == ATTENTION:
            set_attention(base, ATTENTION)


def padded_batch(model: Any, sequences: list[list[int]], pad_id: int) -> dict[str, Any]:
    """`sequences` right-padded into one batch on `model`'s device, every real token a label."""
    import torch

    device = next(model.parameters()).device
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def compare_paths(model: Any, sequences: list[list[int]], pad_id: int) -> dict[str, float]:
    """Check the fast path on `sequences` (at least two): the loss of the plain padded batch vs the fast path, and
    the largest logit change of example 1 when example 0's tokens change (0 means no cross-example leakage)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = padded_batch(model, sequences, pad_id)
            with plain_path(model):
                plain = model(**padded)
            fast = model(**padded)
            changed = [[(t + 1) % 1000 for t in sequences[0]], *sequences[1:]]
            other = model(**padded_batch(model, changed, pad_id))
        n = len(sequences[1])
        leak = (fast.logits[1, :n].float() - other.logits[1, :n].float()).abs().max().item()
        loss_plain, loss_fast = plain.loss.item(), fast.loss.item()
    finally:
        model.train(was_training)
    return {
        "loss_plain": loss_plain,
        "loss_fast": loss_fast,
        "loss_rel_diff": abs(loss_fast - loss_plain) / abs(loss_plain),
        "leak_max_abs_logit_change": leak,
    }
