"""Decoding on a CPU: the model's linear layers multiply a few rows through oneDNN instead of MKL.

A decoding step multiplies one row per sequence by every weight matrix. MKL's float32 GEMM is slow at that shape on
the CPUs measured (2-core AMD EPYC VM, torch 2.13 CPU): 8 rows through the 1.5B's gate projection took 22.4 ms with
`F.linear` and 7.7 ms with oneDNN, its 151,936-word LM head 444 ms and 136 ms (`benchmarks/cpu_generate.py` times
whole generations). oneDNN reads the same float32 weights in place, with no copy; only the order of the sums differs.
Inputs of more than `MAX_ROWS` rows (a prompt's prefill) keep MKL, which is as fast there. `CODETUNE_ONEDNN=0` turns
it off.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

MAX_ROWS = 64
ENABLED = os.environ.get("CODETUNE_ONEDNN", "1") != "0"


@functools.cache
def available() -> bool:
    """oneDNN's linear kernel is in this torch build and agrees with `F.linear` on a small input."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=g) for s in ((2, 3, 64), (48, 64), (48,)))
        got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
        return bool(torch.allclose(got, F.linear(x, w, b), rtol=1e-4, atol=1e-5))
    except (AttributeError, RuntimeError):
        return False


def _linear(module: Any, x: Any) -> Any:
    w = module.weight
    small = x.numel() <= MAX_ROWS * x.shape[-1]
    if small and x.dtype == w.dtype == torch.float32 and w.is_contiguous() and not torch.is_grad_enabled():
        return torch.ops.mkldnn._linear_pointwise(x, w, module.bias, "none", [], "")
    return F.linear(x, w, module.bias)


@contextmanager
def onednn_linears(model: Any) -> Iterator[None]:
    """Within this block, every float32 `nn.Linear` of a CPU `model` (LoRA layers' base and adapter layers included)
    sends inputs of at most `MAX_ROWS` rows, without gradients, to oneDNN. Elsewhere, and on other devices, nothing
    changes."""
    params = next(model.parameters(), None)
    if not ENABLED or params is None or params.device.type != "cpu" or not available():
        yield
        return
    patched = [
        m
        for m in model.modules()
        if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32 and "forward" not in vars(m)
    ]
    for m in patched:
        m.forward = functools.partial(_linear, m)  # type: ignore[method-assign]  # removed again below
    try:
        yield
    finally:
        for m in patched:
            del m.forward
