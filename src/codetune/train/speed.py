"""codetune's fast LoRA training path: no compute on padding, varlen flash attention, compiled (or Liger's fused)
kernels, lean LoRA activations, memory-aware batches.

`configure_fast_path(model, cfg, device)` patches the model and returns the SFTConfig keyword arguments to merge over
the stage's own ones; `after_lora(trainer.model)` finishes it once SFTTrainer has added the LoRA layers. The loss is the
plain padded loss: only the arithmetic on pad tokens is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import types
import warnings
from contextlib import contextmanager
from typing import Any

from codetune.errors import CodetuneError
from codetune.models.attention import set_attention, use_attention
from codetune.train import attention as attn
from codetune.train.attention import ATTENTION
from codetune.train.config import TrainConfig, kernel_conflict

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


def _switch(value: str, auto: bool) -> bool:
    return {"on": True, "off": False}.get(value, auto)


def liger_installed() -> bool:
    """liger-kernel is installed and imports (its Triton kernels need a matching triton)."""
    if importlib.util.find_spec("liger_kernel") is None:
        return False
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception:
        return False
    return True


# ---------------------------------------------------------------- padding-free backbone


def _backbone(model: Any) -> Any:
    if hasattr(model, "get_base_model"):  # PEFT wrapper
        model = model.get_base_model()
    return getattr(model, model.base_model_prefix, model)


def unpad_backbone(model: Any, *, device: str = "cpu") -> None:
    """Make the decoder drop pad tokens: a padded (B, L) batch runs as one (1, T) row of real tokens, each example
    attending only to itself, and the hidden states are scattered back to (B, L, H) with zeros at pad positions.
    Batches without padding, with a cache or with inputs_embeds pass through unchanged."""
    backbone = _backbone(model)
    if getattr(backbone, "_codetune_unpad", False):
        return
    original = backbone.forward
    layer_types = set(getattr(backbone.config, "layer_types", None) or ["full_attention"])

    def forward(
        self: Any, input_ids: Any = None, attention_mask: Any = None, position_ids: Any = None, **kwargs: Any
    ):
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
            return full.masked_scatter(keep[..., None], h[0])

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
def plain_path(model: Any):
    """Temporarily undo `unpad_backbone` and use SDPA (to compare the fast path with the plain one)."""
    backbone = _backbone(model)
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


def compile_layers(model: Any) -> int:
    """torch.compile each decoder layer (dynamic token count; identical layers share one compiled graph), fusing
    LoRA's dropout/scale/add and the elementwise ops to cut kernel launches. Returns the layers compiled."""
    layers = getattr(_backbone(model), "layers", [])
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


# ---------------------------------------------------------------- batch plan and SFTConfig arguments


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
    per = ACT_BYTES_CHECKPOINTED if checkpointing else ACT_BYTES[lean, kernels]
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


def _triton_ready() -> bool:
    """Inductor can generate GPU kernels (it needs Triton and a GPU Triton supports)."""
    from torch.utils._triton import has_triton

    return has_triton()


def choose_kernels(cfg: TrainConfig, cuda: bool) -> str:
    """How the decoder layers run: "compile" (torch.compile), "liger" (Liger's fused kernels) or "eager". An explicit
    "on" wins over the other's "auto"; on CUDA with Triton, auto compiles (measured faster and leaner than Liger on an
    H200)."""
    if conflict := kernel_conflict(cfg):
        raise CodetuneError(f"config: {conflict}")
    if cfg.liger_kernel == "on":
        if not liger_installed():
            raise CodetuneError(
                "config: train.liger_kernel: 'on' needs the liger-kernel package (codetune[gpu]) importable"
            )
        return "liger"
    if _switch(cfg.compile, cuda and _triton_ready()):
        return "compile"
    return "liger" if cfg.liger_kernel == "auto" and cuda and liger_installed() else "eager"


def _training_arg_names() -> set[str]:
    from trl import SFTConfig

    return {f.name for f in dataclasses.fields(SFTConfig)}


def configure_fast_path(
    model: Any,
    cfg: TrainConfig,
    device: str,
    *,
    world_size: int = 1,
    max_micro_batch: int | None = None,
    memory_bytes: float | None = None,
) -> dict[str, Any]:
    """Patch `model` for codetune's fast path and return SFTConfig kwargs to merge over the stage's own:
    `SFTConfig(**{**base_kwargs, **configure_fast_path(model, cfg, device)})`. Call it before SFTTrainer (which
    applies LoRA and Liger). Keys: packing, padding_free, bf16, fp16, use_liger_kernel, gradient_checkpointing (and
    activation_checkpointing on transformers >= 5.2x), per_device_train_batch_size, gradient_accumulation_steps,
    optim; `model.codetune_fast_path` records the decisions."""
    import torch

    cuda = device.startswith("cuda")
    if cfg.effective_batch_size % world_size:
        raise CodetuneError(
            f"config: train.effective_batch_size: {cfg.effective_batch_size} is not a multiple of the "
            f"{world_size} processes; change it"
        )
    kernels = choose_kernels(cfg, cuda)
    unpad = _switch(cfg.padding_free, cuda)
    lean = _switch(cfg.lean_lora, True)
    if unpad:
        unpad_backbone(model, device=device)
    if memory_bytes is None and cuda:
        memory_bytes = torch.cuda.get_device_properties(torch.device(device)).total_memory

    def plan_for(kernels: str) -> BatchPlan:
        return plan_batches(
            model,
            cfg,
            memory_bytes,
            kernels=kernels,
            lean=lean,
            world_size=world_size,
            max_micro_batch=max_micro_batch,
        )

    plan = plan_for(kernels)
    if plan.checkpointing and kernels == "compile" and cfg.compile == "auto":
        # compiled layers under activation checkpointing have not been measured on a GPU: keep the eager path there
        kernels = choose_kernels(cfg.model_copy(update={"compile": "off"}), cuda)
        plan = plan_for(kernels)
    liger = kernels == "liger"
    dtype = next(model.parameters()).dtype
    kwargs: dict[str, Any] = {
        "packing": False,  # packing would change how many examples make an optimizer step
        "padding_free": False,  # the backbone drops padding itself, so TRL keeps truncating to max_length
        "bf16": dtype == torch.bfloat16,
        "fp16": dtype == torch.float16,
        "use_liger_kernel": liger,
        "gradient_checkpointing": plan.checkpointing,
        "per_device_train_batch_size": plan.micro_batch,
        "gradient_accumulation_steps": plan.accumulation,
    }
    if "activation_checkpointing" in _training_arg_names():
        kwargs["activation_checkpointing"] = plan.checkpointing
    if cuda:
        kwargs["optim"] = "adamw_torch_fused"
    attention = "none"
    if unpad:
        attention = "sdpa-block-mask"
        if cuda and attn.varlen_ready(device, torch.float16 if dtype == torch.float16 else torch.bfloat16):
            attention = "flash-varlen"
        elif cuda:
            reason = "; ".join(f"{k}: {v}" for k, v in attn.VARLEN_STATE.items() if v is not True)
            warnings.warn(
                f"codetune: flash varlen attention unavailable ({reason}); using SDPA", stacklevel=2
            )
    model.codetune_fast_path = {
        **dataclasses.asdict(plan),
        "padding_free": unpad,
        "attention": attention,
        "liger": liger,
        "compile": kernels == "compile",
        "compile_memory_budget": cfg.compile_memory_budget if kernels == "compile" else None,
        "lean_lora": lean,
        # Seeds are the leanest, but their generator objects break compiled graphs; bits trace.
        "lean_masks": "bits" if kernels == "compile" else "seed",
    }
    return kwargs


def after_lora(model: Any) -> dict[str, int] | None:
    """Finish the fast path on the PEFT model SFTTrainer built (`trainer.model`): the lean LoRA patch and the
    compiled layers, if chosen. Returns the projections and MLPs patched, or None when lean LoRA is off."""
    info = getattr(model, "codetune_fast_path", None) or {}
    if info.get("compile") and not info.get("compiled_layers"):
        info["compiled_layers"] = compile_layers(model)
    if not info.get("lean_lora"):
        return None
    from codetune.train.lean_lora import make_lean

    info["lean_lora_patched"] = make_lean(model, masks=info.get("lean_masks", "seed"))
    return info["lean_lora_patched"]


def training_context(model: Any) -> contextlib.AbstractContextManager:
    """What must hold around the training loop while graphs compile: the compiler's activation memory budget the fast
    path chose (its partitioner runs when a compiled layer first runs forward with gradients)."""
    import torch

    budget = (getattr(model, "codetune_fast_path", None) or {}).get("compile_memory_budget")
    if budget is None or budget >= 1:
        return contextlib.nullcontext()
    return torch._functorch.config.patch(activation_memory_budget=budget)


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


def compare_paths(model: Any, sequences: list[list[int]], pad_id: int) -> dict[str, float]:
    """Check the fast path on `sequences` (at least two): the loss of the plain padded batch vs the fast path, and
    the largest logit change of example 1 when example 0's tokens change (0 means no cross-example leakage)."""
    import torch

    def batch(seqs: list[list[int]]) -> dict[str, Any]:
        device = next(model.parameters()).device
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            padded = batch(sequences)
            with plain_path(model):
                plain = model(**padded)
            fast = model(**padded)
            changed = [[(t + 1) % 1000 for t in sequences[0]], *sequences[1:]]
            other = model(**batch(changed))
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
