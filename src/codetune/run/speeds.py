"""Measured speeds used by `codetune run --dry-run` for time estimates (see benchmarks/RESULTS.md)."""

from __future__ import annotations

# (device, model size) -> real tokens/s for a LoRA training step and for greedy generation (batched).
MEASURED: dict[tuple[str, str], dict[str, float]] = {
    ("cpu", "0.5b"): {
        "train_tokens_s": 60.0,
        "generate_tokens_s": 25.0,
        "load_s": 10.0,
        "first_load_s": 110.0,
    },
    ("cpu", "1.5b"): {
        "train_tokens_s": 11.0,
        "generate_tokens_s": 3.7,
        "load_s": 25.0,
        "first_load_s": 150.0,
    },
    ("cuda", "0.5b"): {
        "train_tokens_s": 20000.0,
        "generate_tokens_s": 2000.0,
        "load_s": 10.0,
        "first_load_s": 60.0,
    },
    ("cuda", "1.5b"): {
        "train_tokens_s": 9800.0,
        "generate_tokens_s": 720.0,
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
