"""Shared fixtures: a tiny random-init Qwen2 model with the real tokenizer, and the real 0.5B catalog model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REAL_MODEL = "qwen2.5-coder-0.5b-instruct"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Qwen2ForCausalLM folder (2 layers, hidden 64) with the real Qwen2.5 tokenizer."""
    from codetune.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def qwen_tokenizer(tiny_model_dir: Path):
    from codetune.models.load import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def real_model_spec() -> str:
    """The real 0.5B catalog model, assembled (and cached) on first use."""
    from codetune.models.assemble import pull
    from codetune.models.catalog import get_entry

    pull(get_entry(REAL_MODEL), quiet=True)
    return REAL_MODEL


@pytest.fixture(scope="session")
def lcb41() -> Path:
    """The 41 LiveCodeBench problems of the reference study (present only in this workplace)."""
    p = SHARED / "data" / "lcb" / "atcoder_easy_2408_2502.jsonl"
    if not p.is_file():
        pytest.skip("../shared/data/lcb is not present on this machine")
    return p


@pytest.fixture
def fake_hub():
    """A local stand-in for the Hugging Face hub (tests/fake_hub.py); point HF_ENDPOINT at `fake_hub.url`."""
    from fake_hub import FakeHub

    hub = FakeHub()
    yield hub
    hub.close()
