"""Lean LoRA: the same loss and gradients as PEFT (dropout masks replayed), less saved activation memory."""

from __future__ import annotations

import copy
import types

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from codetune.train import lean_lora  # noqa: E402
from codetune.train.memory import saved_activation_bytes  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def base():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=500,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg)


def _peft(base, dropout: float, dtype=torch.float32):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(5)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=TARGETS)
    model = get_peft_model(copy.deepcopy(base).to(dtype), lora)
    with torch.no_grad():
        for name, w in model.named_parameters():
            if "lora_" in name:
                w.data = w.data.float()
            if "lora_B" in name:
                w.normal_(0, 0.5)  # PEFT starts B at zero, which would hide errors in A's gradient
    return model.train()


IDS = torch.randint(0, 500, (2, 9), generator=torch.Generator().manual_seed(1))


def _step(model, autocast: bool = False) -> tuple[float, dict]:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(input_ids=IDS, labels=IDS)
    out.loss.backward()
    grads = {n: w.grad.float().clone() for n, w in model.named_parameters() if w.grad is not None}
    return out.loss.item(), grads


def _worst(g1: dict, g2: dict) -> float:
    assert g1.keys() == g2.keys() and len(g1) == 28
    return max(((g1[k] - g2[k]).abs().max() / g1[k].abs().max()).item() for k in g1)


@pytest.fixture(params=["seed", "bits"])
def masks(request, monkeypatch):
    """Both ways a mask reaches the backward pass (`.mode`); `.drawn`: the masks each layer's forward drew, in
    order."""
    drawn: list = []
    new_mask = lean_lora.LoraSide.new_mask

    def record(self, x):
        mask, packed = new_mask(self, x)
        drawn.append(mask)
        return mask, packed

    monkeypatch.setattr(lean_lora.LoraSide, "new_mask", record)
    return types.SimpleNamespace(mode=request.param, drawn=drawn)


class Replay(nn.Module):
    def __init__(self, masks: list) -> None:
        super().__init__()
        self.masks = masks

    def forward(self, x):
        return x * self.masks.pop(0)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_same_loss_and_gradients_as_peft(base, dropout, masks):
    lean = _peft(base, dropout)
    counts = lean_lora.make_lean(lean, masks=masks.mode)
    assert counts == {"projections": 14, "mlps": 2}
    lean_loss, lean_grads = _step(lean)

    reference = _peft(base, dropout)
    if dropout:
        # PEFT runs its dropouts in the same order (q, k, v, o, gate, up, down): give each the lean path's mask.
        order = list(masks.drawn)
        assert len(order) == 14 and all(m is not None for m in order)
        for module in reference.modules():
            if hasattr(module, "lora_dropout"):
                module.lora_dropout["default"] = Replay(order)
    loss, grads = _step(reference)
    assert lean_loss == pytest.approx(loss, rel=1e-6)
    assert _worst(grads, lean_grads) < 1e-5


def test_bf16_autocast_matches_peft(base):
    lean = _peft(base, 0.0, torch.bfloat16)
    lean_lora.make_lean(lean)
    lean_loss, lean_grads = _step(lean, autocast=True)
    loss, grads = _step(_peft(base, 0.0, torch.bfloat16), autocast=True)
    assert lean_loss == pytest.approx(loss, rel=1e-3)
    assert _worst(grads, lean_grads) < 0.05  # bf16 rounding in a different order
    assert all(g.dtype == torch.float32 for g in lean_grads.values())


def test_dropout_is_seeded_and_recomputed_under_checkpointing(base, masks):
    lean = _peft(base, 0.3)
    lean_lora.make_lean(lean, masks=masks.mode)
    checkpointed = _peft(base, 0.3)
    lean_lora.make_lean(checkpointed, masks=masks.mode)
    checkpointed.base_model.model.gradient_checkpointing_enable({"use_reentrant": False})
    torch.manual_seed(3)
    loss, grads = _step(lean)
    torch.manual_seed(3)
    loss_ckpt, grads_ckpt = _step(checkpointed)
    assert loss_ckpt == loss and _worst(grads, grads_ckpt) == 0.0
    torch.manual_seed(4)
    assert _step(lean)[0] != loss  # another seed, other masks
    with torch.no_grad():
        lean.eval()
        no_dropout = lean(input_ids=IDS, labels=IDS).loss.item()
    assert no_dropout != loss


def test_eval_and_no_grad_take_peft_forward(base):
    lean = _peft(base, 0.3)
    lean_lora.make_lean(lean)
    reference = _peft(base, 0.3)
    for model in (lean, reference):
        model.eval()
    with torch.no_grad():
        assert torch.equal(lean(input_ids=IDS).logits, reference(input_ids=IDS).logits)
    assert lean_lora.make_lean(lean) == {"projections": 14, "mlps": 2}  # idempotent


def _saved_activation_bytes(model) -> int:
    return saved_activation_bytes(model, lambda: model(input_ids=IDS, labels=IDS))


def test_keeps_less_for_backward(base, masks):
    peft_bytes = _saved_activation_bytes(_peft(base, 0.05))
    lean = _peft(base, 0.05)
    lean_lora.make_lean(lean, masks=masks.mode)
    lean_bytes = _saved_activation_bytes(lean)
    # Per layer and token, PEFT keeps masks + dropped copies of 7 inputs and the down projection's input; lean does not.
    assert lean_bytes < 0.6 * peft_bytes, (lean_bytes, peft_bytes)
    no_dropout = _peft(base, 0.0)
    lean_lora.make_lean(no_dropout, masks=masks.mode)
    extra = lean_bytes - _saved_activation_bytes(no_dropout)
    elements = IDS.numel() * 2 * (6 * 64 + 160)  # 2 layers: q, k, v, o, gate, up inputs of 64, down's of 160
    assert extra == (0 if masks.mode == "seed" else pytest.approx(elements / 8, abs=14 * 2))


def test_bits_round_trip():
    keep = torch.rand(3, 5, 11, generator=torch.Generator().manual_seed(0)) < 0.7
    packed = lean_lora.pack_bits(keep)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-keep.numel() // 8)
    assert torch.equal(lean_lora.unpack_bits(packed, keep.shape), keep)


def test_memory_benchmark_smoke(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "memory.json"
    paths = "peft,lean,lean_bits,peft_compile,peft_compile_budget40"
    args = ["--config", "tiny", "--layers", "2", "--tokens", "64", "--repeats", "1"]
    args += ["--paths", paths, "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "train_memory.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report == json.loads(proc.stdout)
    assert report["paths"]["lean"]["patched"] == {"projections": 14, "mlps": 2}
    assert report["paths"]["peft"]["patched"] is None
    assert 0 < report["ratios"]["saved_bytes_lean_over_peft"] < 0.7
    assert 0 < report["ratios"]["saved_bytes_peft_compile_budget40_over_peft_compile"] < 0.8


def test_bits_masks_trace_under_torch_compile(base):
    """With masks kept in bits, compiled decoder layers give the eager loss and gradients (inductor told to draw
    random numbers as eager does, so both draw the same masks)."""
    import torch._inductor.config as inductor

    results = []
    # inductor's own patch: pytest's monkeypatch undoes by deleting, which hides the option for later tests
    with inductor.patch(fallback_random=True):
        for compiled in (False, True):
            model = _peft(base, 0.3)
            lean_lora.make_lean(model, masks="bits")
            if compiled:
                for layer in model.base_model.model.model.layers:
                    layer.compile(dynamic=True)
            torch.manual_seed(1)
            results.append(_step(model))
    (loss, grads), (compiled_loss, compiled_grads) = results
    assert compiled_loss == pytest.approx(loss, rel=1e-5)
    assert _worst(grads, compiled_grads) < 1e-4
