"""Fixtures for report tests: fixture runs written by report_fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import BASE, write_eval, write_run


@pytest.fixture
def fixture_runs(tmp_path: Path) -> dict[str, Path]:
    """Two arms (deep, diverse) with logs, sweeps and eval folders, plus a standalone base eval folder."""
    base = tmp_path / "base_eval"
    write_eval(base, "base", BASE, None)
    return {
        "deep": write_run(tmp_path / "arms" / "deep", "deep"),
        "diverse": write_run(tmp_path / "arms" / "diverse", "diverse"),
        "base": base,
    }
