"""Training memory: how much a micro-batch needs (weights, saved activations, the LM head's tiles), the batch plan
that fits a device, and a probe that counts what autograd keeps for the backward pass (it calibrates ACT_BYTES)."""

from __future__ import annotations

import dataclasses
from typing import Any

from codetune.train.config import TrainConfig

# Saved activation bytes per token, per layer, per hidden unit, without checkpointing (LoRA, bf16), by (lean LoRA,
# kernels). PEFT's LoRA with Liger: fitted to the 1.5B figures of issue 8 (27.7 GiB at ~5,700 padded tokens); Liger's
# norms and SwiGLU save less than the eager ones. Lean LoRA, eager: 38.3 measured by benchmarks/train_memory.py on a
# CPU, 40.0 on an H200 (PEFT's LoRA: 112.5 and 83.3); with Liger: counted by hand (its norms keep less). Compiled
# layers: fitted to an H200 run (benchmarks/RESULTS.md, session 5: lean 9.29 GiB peak where lean + Liger took 19.86,
# PEFT 26.26 where PEFT + Liger took 26.39).
ACT_BYTES = {
    (False, "liger"): 95,
    (False, "eager"): 125,
    (False, "compile"): 95,
    (True, "liger"): 36,
    (True, "eager"): 40,
    (True, "compile"): 14,
}
ACT_BYTES_CHECKPOINTED = 8
MEMORY_FRACTION = 0.85


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    micro_batch: int
    accumulation: int
    checkpointing: bool
    estimated_peak_gib: float
    budget_gib: float | None


def estimate_peak_bytes(
    model: Any,
    micro_batch: int,
    max_length: int,
    *,
    checkpointing: bool,
    kernels: str,
    lean: bool = False,
    budget: float = 1.0,
) -> float:
    """Worst-case training memory: weights + saved activations of `micro_batch` full-length examples + the LM head's
    fp32 logit tiles (TRL scores 4,096 tokens x 32,768 words at a time). kernels: liger, compile or eager; budget:
    the compiler's activation memory budget (compiled layers keep about that share of their activations)."""
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    per = float(ACT_BYTES_CHECKPOINTED if checkpointing else ACT_BYTES[lean, kernels])
    if kernels == "compile" and not checkpointing:
        per *= budget
    tokens = micro_batch * max_length
    acts = tokens * c.hidden_size * c.num_hidden_layers * per
    head = 4096 * min(c.vocab_size, 32768) * 4 * 3 + tokens * c.hidden_size * 4
    return weights + acts + head


def plan_batches(
    model: Any,
    cfg: TrainConfig,
    memory_bytes: float | None,
    *,
    kernels: str,
    lean: bool = False,
    world_size: int = 1,
    max_micro_batch: int | None = None,
) -> BatchPlan:
    """Largest micro-batch (a divisor of the per-process effective batch, at most `max_micro_batch`, default the
    configured one) whose worst case fits in memory without checkpointing; checkpointing only if none down to 2 fits.
    The optimizer-step batch stays `cfg.effective_batch_size` sequences."""
    per_process = cfg.effective_batch_size // world_size
    cap = max_micro_batch or cfg.micro_batch_size
    sizes = [m for m in range(min(cap, per_process), 0, -1) if per_process % m == 0]
    limit = None if memory_bytes is None else memory_bytes * MEMORY_FRACTION

    def peak_bytes(m: int, ckpt: bool) -> float:
        return estimate_peak_bytes(
            model,
            m,
            cfg.max_length,
            checkpointing=ckpt,
            kernels=kernels,
            lean=lean,
            budget=cfg.compile_memory_budget,
        )

    def plan(m: int, ckpt: bool) -> BatchPlan:
        peak = peak_bytes(m, ckpt)
        return BatchPlan(m, per_process // m, ckpt, round(peak / 2**30, 2), limit and round(limit / 2**30, 2))

    forced = {"on": True, "off": False}.get(cfg.gradient_checkpointing)
    if limit is None:  # CPU: memory is not the limit, and checkpointing only costs time
        return plan(sizes[0], bool(forced))
    for ckpt in [forced] if forced is not None else [False, True]:
        floor = 1 if ckpt or forced is False else min(2, sizes[0])
        for m in sizes:
            if m >= floor and peak_bytes(m, ckpt) <= limit:
                return plan(m, ckpt)
    return plan(sizes[-1], forced is not False)


def saved_activation_bytes(model: Any, run: Any, within: Any = ()) -> int:
    """Bytes autograd keeps for the backward pass while `run()` runs `model` forward: distinct storages, parameters
    excluded; with `within` (modules), only what is saved while one of them runs. Calibrates ACT_BYTES."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}
    inside = [not within]
    hooks = [m.register_forward_pre_hook(lambda *_: inside.__setitem__(0, True)) for m in within]
    hooks += [m.register_forward_hook(lambda *_: inside.__setitem__(0, False)) for m in within]

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if inside[0] and storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
    finally:
        for h in hooks:
            h.remove()
    return sum(seen.values())
