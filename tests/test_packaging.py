"""A built wheel carries every data file the package reads (an editable install would hide a missing one)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_package_data_covers_every_data_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "codetune"
    ]
    package = ROOT / "src" / "codetune"
    files = {
        p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"
    }
    covered = {p for g in globs for p in package.glob(g)}
    assert files, "no data files found"
    assert sorted(str(p.relative_to(package)) for p in files - covered) == []
