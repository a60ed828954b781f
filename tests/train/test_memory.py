"""The batch plan: the effective batch is kept, memory decides micro-batches and checkpointing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fast_fixtures import sharp_model  # noqa: E402

from codetune.train import memory  # noqa: E402
from codetune.train.config import TrainConfig  # noqa: E402
from codetune.train.memory import plan_batches  # noqa: E402


def test_batch_plan_keeps_the_effective_batch(tiny_model_dir):
    model = sharp_model(tiny_model_dir)
    cfg = TrainConfig(micro_batch_size=8, effective_batch_size=16, max_length=1024)
    roomy = plan_batches(model, cfg, 80 * 2**30, kernels="liger")
    assert (roomy.micro_batch, roomy.accumulation, roomy.checkpointing) == (8, 2, False)
    grown = plan_batches(model, cfg, 80 * 2**30, kernels="liger", max_micro_batch=16)
    assert (grown.micro_batch, grown.accumulation) == (16, 1)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    tight = plan_batches(model, cfg, weights * 1.3, kernels="liger")
    assert tight.micro_batch * tight.accumulation == 16
    assert tight.micro_batch < 8 or tight.checkpointing
    forced = plan_batches(
        model, cfg.model_copy(update={"gradient_checkpointing": "on"}), 80 * 2**30, kernels="liger"
    )
    assert forced.checkpointing and forced.micro_batch == 8
    cpu = plan_batches(model, cfg, None, kernels="eager")
    assert (cpu.micro_batch, cpu.checkpointing) == (8, False)


def test_compiled_lean_layers_plan_bigger_batches(tiny_model_dir):
    model = sharp_model(tiny_model_dir)
    cfg = TrainConfig(micro_batch_size=16, effective_batch_size=16, max_length=1024)
    need = memory.estimate_peak_bytes(model, 16, 1024, checkpointing=False, kernels="compile", lean=True)
    compiled = plan_batches(model, cfg, need / memory.MEMORY_FRACTION, kernels="compile", lean=True)
    liger = plan_batches(model, cfg, need / memory.MEMORY_FRACTION, kernels="liger", lean=True)
    assert (compiled.micro_batch, compiled.checkpointing) == (16, False)
    assert liger.micro_batch < 16  # Liger's eager layers keep more activations than compiled ones
