"""Measured speeds used by `codetune run --dry-run` for time estimates (see benchmarks/RESULTS.md)."""

from __future__ import annotations

# (device, model size) -> real tokens/s for a LoRA training step and for greedy generation (batched).
MEASURED: dict[tuple[str, str], dict[str, float]] = {
    ("cpu", "0.5b"): {
        "train_tokens_s": 20.0,  # quickstart, 2-core CPU, fp32 (15-22 measured)
        "generate_tokens_s": 20.0,  # quickstart: base + 2 adapters x 4 problems in one batch of 12, 352 new tokens
        # (19.9-22.2 since decoding steps run on oneDNN, session 9; 13.5 before)
        "load_s": 10.0,
        "first_load_s": 135.0,  # part wheels downloaded + assembled (54 s) and converted (78 s), quiet machine
    },
    ("cpu", "1.5b"): {
        "train_tokens_s": 11.0,
        "generate_tokens_s": 3.7,
        "load_s": 34.0,
        "first_load_s": 407.0,
    },
    ("cuda", "0.5b"): {
        "train_tokens_s": 17200.0,  # H200, 0.5B-shaped random init, fast path
        "generate_tokens_s": 3600.0,
        "load_s": 10.0,
        "first_load_s": 60.0,
    },
    ("cuda", "1.5b"): {
        "train_tokens_s": 28337.0,  # H200, session 5 (benchmarks/RESULTS.md): compiled layers, lean LoRA
        "generate_tokens_s": 3474.0,  # H200, session 5: static cache + compile, 41 problems x 512 tokens
        "load_s": 15.0,
        "first_load_s": 90.0,
    },
}


def size_class(model: str) -> str | None:
    m = model.lower()
    for size in ("0.5b", "1.5b"):
        if size in m:
            return size
    return None


def lookup(device: str, model: str) -> dict[str, float] | None:
    size = size_class(model)
    return MEASURED.get((device, size)) if size else None
