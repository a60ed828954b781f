"""One shared tiny-model training run for the train tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sft_fixtures import fast_config, make_splits


@pytest.fixture(scope="session")
def trained_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted run of `fast_config()` on `make_splits()` (the baseline for resume tests)."""
    from codetune.train import train

    out = tmp_path_factory.mktemp("runs") / "full"
    result = train(
        str(tiny_model_dir),
        make_splits(),
        fast_config(),
        out,
        extra_config={"data": {"dataset": "inline"}},
        data_fingerprints={"data": "abc123"},
        progress=False,
    )
    return result
