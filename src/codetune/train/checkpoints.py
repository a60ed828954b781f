"""Trainer checkpoints in a run folder: which are complete, which one a resume starts from."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# The Trainer writes trainer_state.json last, after the adapter, optimizer, scheduler and RNG state.
REQUIRED = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "trainer_state.json",
)


def checkpoint_step(path: Path) -> int | None:
    m = CHECKPOINT.match(path.name)
    return int(m.group(1)) if m and path.is_dir() else None


def is_complete(path: Path) -> bool:
    """True when every file a resume needs is there and trainer_state.json parses with the folder's step."""
    step = checkpoint_step(path)
    if step is None or not all((path / name).is_file() for name in REQUIRED):
        return False
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def list_checkpoints(run_dir: Path, *, complete_only: bool = True) -> list[Path]:
    """Checkpoint folders sorted by step."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if checkpoint_step(p) is not None]
    if complete_only:
        found = [p for p in found if is_complete(p)]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def latest_complete(run_dir: Path) -> Path | None:
    done = list_checkpoints(run_dir)
    return done[-1] if done else None


def remove_incomplete(run_dir: Path) -> list[Path]:
    """Delete half-written checkpoint folders (a kill during a save); return what was removed."""
    removed = [p for p in list_checkpoints(run_dir, complete_only=False) if not is_complete(p)]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed
