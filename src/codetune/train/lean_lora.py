"""Memory-lean LoRA training: PEFT's LoRA maths and dropout, without the activations PEFT keeps for the backward pass.

PEFT computes `lora_B(lora_A(dropout(x)))` and so keeps, for every adapted projection, a dropout mask and a dropped copy
of the projection's input; q/k/v and gate/up each keep their own. Here a projection keeps only its input (which the
frozen base projection keeps anyway) and a seed, and draws the same dropout mask again in the backward pass (or, with
`masks="bits"`, keeps the mask packed at one bit per element: no generator objects or `.item()` in the forward, so
`torch.compile` can trace it, for 1/16 of a bf16 copy's memory). A SwiGLU MLP whose three projections are LoRA layers
runs as one function that keeps its input and the gate and up outputs and recomputes the down projection's input (as
Liger's SwiGLU recomputes the SiLU).

`make_lean(model, masks=...)` patches a PEFT model in place, after LoRA (and Liger) are applied. The lean path runs
only in training mode with gradients on; evaluation, generation, mixed-adapter batches, merged or disabled adapters,
DoRA and several active adapters take PEFT's own forward.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

MASKS = ("seed", "bits")


def _seed() -> int:
    # From the global CPU generator: Trainer checkpoints and gradient checkpointing save and restore it.
    return int(torch.randint(0, 2**62, (1,)).item())


def _mask(seed: int, shape: torch.Size, dtype: torch.dtype, device: torch.device, p: float) -> torch.Tensor:
    """The inverted-dropout mask (keep / (1 - p)) that `seed` stands for; the same seed gives the same mask."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return torch.empty(shape, dtype=dtype, device=device).bernoulli_(1 - p, generator=gen).div_(1 - p)


def pack_bits(keep: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8, eight elements a byte."""
    flat = nn.functional.pad(keep.reshape(-1).to(torch.uint8), (0, -keep.numel() % 8))
    weights = 2 ** torch.arange(8, dtype=torch.uint8, device=keep.device)
    return (flat.view(-1, 8) * weights).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed[:, None] >> shifts) & 1
    return bits.reshape(-1)[: shape.numel()].view(shape).bool()


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


def compute_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The dtype a linear layer's matmul runs in: the autocast dtype under autocast, else the weight's (PEFT casts x
    to the adapter's dtype; the frozen nn.Linear needs x in its own)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return weight.dtype


class LoraSide:
    """One projection's LoRA branch: A (r, in), B (out, r), scaling, dropout p, compute dtype, and how its dropout
    mask reaches the backward pass (a seed, or the mask packed into bits)."""

    def __init__(
        self, a: torch.Tensor, b: torch.Tensor, scaling: float, p: float, dtype: torch.dtype, *, bits: bool
    ) -> None:
        self.a, self.b, self.scaling, self.p, self.dtype, self.bits = a, b, scaling, p, dtype, bits
        self.seed = _seed() if p and not self.bits else 0

    def new_mask(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(the scaled mask for x or None without dropout, what the backward pass needs to have it again)."""
        if not self.p:
            return None, None
        if not self.bits:
            return _mask(self.seed, x.shape, self.dtype, x.device, self.p), None
        keep = torch.rand(x.shape, device=x.device) < 1 - self.p  # out of place: compiled graphs stay correct
        return keep.to(self.dtype) / (1 - self.p), pack_bits(keep)

    def saved_mask(self, x: torch.Tensor, packed: torch.Tensor | None) -> torch.Tensor | None:
        if not self.p:
            return None
        if packed is None:
            return _mask(self.seed, x.shape, self.dtype, x.device, self.p)
        return unpack_bits(packed, x.shape).to(self.dtype) / (1 - self.p)

    def dropped(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        d = x.to(self.dtype)
        return d * mask if mask is not None else d

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(scaled LoRA output, the rank-r activation h = dropout(x) A^T kept for B's gradient, the packed mask)."""
        mask, packed = self.new_mask(x)
        h = self.dropped(x, mask) @ self.a.to(self.dtype).t()
        return (h @ self.b.to(self.dtype).t()) * self.scaling, h, packed

    def backward(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        packed: torch.Tensor | None,
        grad_out: torch.Tensor,
        need_x: bool,
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """(gradient for x in x's dtype or None, grad A, grad B) from the gradient of the scaled LoRA output."""
        g = grad_out.to(self.dtype) * self.scaling
        grad_b = (_flat(g).t() @ _flat(h)).to(self.b.dtype)
        gh = g @ self.b.to(self.dtype)
        mask = self.saved_mask(x, packed)
        grad_a = (_flat(gh).t() @ _flat(self.dropped(x, mask))).to(self.a.dtype)
        grad_x = None
        if need_x:
            grad_x = gh @ self.a.to(self.dtype)
            grad_x = (grad_x * mask if mask is not None else grad_x).to(x.dtype)
        return grad_x, grad_a, grad_b


class LoraBranch(torch.autograd.Function):
    """scaling * B(A(dropout(x))), keeping x and the rank-r activation instead of a mask and a dropped copy of x."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, side: LoraSide) -> torch.Tensor:
        y, h, packed = side.forward(x)
        ctx.save_for_backward(x, h, packed)
        ctx.side = side
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple:
        x, h, packed = ctx.saved_tensors
        grad_x, grad_a, grad_b = ctx.side.backward(x, h, packed, grad_y, ctx.needs_input_grad[0])
        return grad_x, grad_a, grad_b, None


def _project(
    x: torch.Tensor, w: torch.Tensor, side: LoraSide
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Frozen base projection plus LoRA, summed the way PEFT does (in the wider dtype, cast back to the base's); also
    the rank-r activation and the packed mask."""
    dtype = compute_dtype(x, w)
    base = x.to(dtype) @ w.to(dtype).t()
    lora, h, packed = side.forward(x)
    return (base + lora).to(dtype), h, packed


class LoraSwiGLU(torch.autograd.Function):
    """down(silu(gate(x)) * up(x)) with LoRA on all three frozen projections. Keeps x, the gate and up outputs and
    three rank-r activations; the down projection's input and every dropout mask are recomputed in backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, *weights: Any) -> torch.Tensor:
        # The LoRA weights are inputs only so that autograd routes their gradients here; `sides` holds them too.
        wg, wu, wd, *_, sides = weights
        gate, hg, pg = _project(x, wg, sides[0])
        up, hu, pu = _project(x, wu, sides[1])
        y, hd, pd = _project(nn.functional.silu(gate) * up, wd, sides[2])
        ctx.save_for_backward(x, gate, up, hg, hu, hd, pg, pu, pd)
        ctx.sides, ctx.weights, ctx.dtype = sides, (wg, wu, wd), gate.dtype
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple:
        x, gate, up, hg, hu, hd, pg, pu, pd = ctx.saved_tensors
        wg, wu, wd = (w.to(ctx.dtype) for w in ctx.weights)
        sg, su, sd = ctx.sides
        act = nn.functional.silu(gate) * up
        grad_act, grad_ad, grad_bd = sd.backward(act, hd, pd, grad_y, True)
        grad_act = grad_act + grad_y.to(ctx.dtype) @ wd
        del act
        g, u, ga = gate.float(), up.float(), grad_act.float()
        sig = torch.sigmoid(g)
        grad_up = (ga * g * sig).to(up.dtype)
        grad_gate = (ga * u * sig * (1 + g * (1 - sig))).to(gate.dtype)
        del g, u, ga, sig, grad_act
        need_x = ctx.needs_input_grad[0]
        gx_g, grad_ag, grad_bg = sg.backward(x, hg, pg, grad_gate, need_x)
        gx_u, grad_au, grad_bu = su.backward(x, hu, pu, grad_up, need_x)
        grad_x = None
        if need_x:
            grad_x = gx_g + gx_u + (grad_gate @ wg + grad_up @ wu).to(x.dtype)
        return grad_x, None, None, None, grad_ag, grad_bg, grad_au, grad_bu, grad_ad, grad_bd, None


# ---------------------------------------------------------------- patching PEFT models


def _is_lora_linear(module: Any) -> bool:
    from peft.tuners.lora import Linear

    return isinstance(module, Linear)


def plain_adapter(layer: Any, kwargs: dict) -> str | None:
    """The one active adapter if `layer` would run plain LoRA in training (else None: use PEFT's forward)."""
    if not (layer.training and torch.is_grad_enabled()) or layer.disable_adapters or layer.merged:
        return None
    if kwargs.get("adapter_names") is not None or len(layer.active_adapters) != 1:
        return None
    name = layer.active_adapters[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return None
    if getattr(layer, "use_dora", {}).get(name) or getattr(layer, "lora_bias", {}).get(name):
        return None
    if not getattr(layer, "cast_input_dtype_enabled", True):
        return None
    if not isinstance(layer.lora_dropout[name], (nn.Dropout, nn.Identity)):
        return None
    return name


def _side(layer: Any, name: str, x: torch.Tensor) -> LoraSide:
    a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
    dropout = layer.lora_dropout[name]
    p = dropout.p if isinstance(dropout, nn.Dropout) else 0.0
    bits = layer._codetune_masks == "bits"
    return LoraSide(a, b, layer.scaling[name], p, compute_dtype(x, a), bits=bits)


def _linear_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    name = plain_adapter(self, kwargs)
    if name is None or args or kwargs:
        return self._codetune_peft_forward(x, *args, **kwargs)
    result = self.base_layer(x)
    side = _side(self, name, x)
    lora = LoraBranch.apply(x, side.a, side.b, side)
    return (result + lora).to(result.dtype)


def _swiglu_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    projs = (self.gate_proj, self.up_proj, self.down_proj)
    names = [n for p in projs if (n := plain_adapter(p, {})) is not None]
    if args or kwargs or len(names) < len(projs):
        return self._codetune_dense_forward(x, *args, **kwargs)
    sides = tuple(_side(p, n, x) for p, n in zip(projs, names, strict=True))
    weights = [p.base_layer.weight for p in projs]
    loras = [t for s in sides for t in (s.a, s.b)]
    return LoraSwiGLU.apply(x, *weights, *loras, sides)


def _is_swiglu(mlp: Any) -> bool:
    projs = [getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
    lora = [p for p in projs if p is not None and _is_lora_linear(p)]
    if len(lora) < len(projs):
        return False
    if any(p.base_layer.bias is not None or p.base_layer.weight.requires_grad for p in lora):
        return False
    act = getattr(getattr(mlp, "config", None), "hidden_act", None)
    return act in ("silu", "swish")


def make_lean(model: Any, *, masks: str = "seed") -> dict[str, int]:
    """Patch every LoRA projection and SwiGLU MLP of a PEFT `model` (idempotent; a second call may change `masks`);
    returns how many of each. masks: "seed" (least memory) or "bits" (traceable by torch.compile)."""
    if masks not in MASKS:
        raise ValueError(f"masks: {masks!r} is not one of {MASKS}")
    counts = {"projections": 0, "mlps": 0}
    for module in model.modules():
        if _is_lora_linear(module) and not module.base_layer.weight.requires_grad:
            module._codetune_masks = masks
            if "_codetune_peft_forward" not in module.__dict__:
                module._codetune_peft_forward = module.forward
                module.forward = types.MethodType(_linear_forward, module)
            counts["projections"] += 1
        elif _is_swiglu(module):
            if "_codetune_dense_forward" not in module.__dict__:
                module._codetune_dense_forward = module.forward
                module.forward = types.MethodType(_swiglu_forward, module)
            counts["mlps"] += 1
    return counts
