"""codetune's fast LoRA training path: no compute on padding (`train/unpad.py`), varlen flash attention, compiled (or
Liger's fused) kernels, lean LoRA activations, memory-aware batches (`train/memory.py`).

`configure_fast_path(model, cfg, device)` patches the model and returns the SFTConfig keyword arguments to merge over
the stage's own ones; `after_lora(trainer.model)` finishes it once SFTTrainer has added the LoRA layers. The loss is the
plain padded loss: only the arithmetic on pad tokens is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import warnings
from typing import Any

from codetune.errors import CodetuneError
from codetune.train import attention as attn
from codetune.train.config import TrainConfig, kernel_conflict
from codetune.train.memory import BatchPlan, plan_batches
from codetune.train.unpad import backbone_of, unpad_backbone


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


# cuda_graphs: token rows are filled up to a multiple of this (one CUDA graph is recorded per row size)
GRAPH_BUCKET = 1024


def compile_layers(model: Any, mode: str | None = None) -> int:
    """torch.compile each decoder layer (dynamic token count; identical layers share one compiled graph), fusing
    LoRA's dropout/scale/add and the elementwise ops to cut kernel launches. Returns the layers compiled. mode:
    torch.compile's (e.g. "reduce-overhead": CUDA graphs, one per token count; see `unpad_backbone`'s bucket)."""
    layers = getattr(backbone_of(model), "layers", [])
    for layer in layers:
        layer.compile(dynamic=True, mode=mode)
    return len(layers)


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
    graphs = cfg.cuda_graphs and kernels == "compile" and unpad
    if graphs:
        unpad_backbone(model, device=device, bucket=GRAPH_BUCKET)
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
        "compile_mode": "reduce-overhead" if graphs else None,
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
        info["compiled_layers"] = compile_layers(model, info.get("compile_mode"))
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
