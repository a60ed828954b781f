"""The tiny model and packed sequences shared by the fast-path tests (unpadding, memory plan, compiled layers)."""

from __future__ import annotations

from pathlib import Path

import torch

PAD = 151643
LENGTHS = (7, 23, 3, 16, 11)


def sequences(lengths=LENGTHS, seed=0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, 5000, (n,), generator=g).tolist() for n in lengths]


def sharp_model(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    # Larger weights than the init: sharper attention, so leakage would show clearly in the logits.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8)
    return model.eval()
