"""Fixtures shared by the bench tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    """(model, tokenizer) of the tiny Qwen2 on the CPU, loaded once per test module."""
    from codetune.models import load_model

    return load_model(str(tiny_model_dir), device="cpu")
