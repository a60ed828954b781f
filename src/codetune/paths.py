"""Where codetune keeps its cache (assembled models, converted tokenizers)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """`CODETUNE_HOME`, else `$XDG_CACHE_HOME/codetune`, else `~/.cache/codetune`."""
    if env := os.environ.get("CODETUNE_HOME"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "codetune"


def models_dir() -> Path:
    return home() / "models"
