"""Trainer checkpoints in a run folder: which are complete, which one a resume starts from."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STAGING = ".staging"  # checkpoints are written here, then renamed into the run folder whole
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
    if (run_dir / STAGING).is_dir():
        removed.append(run_dir / STAGING)
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return removed


# ---------------------------------------------------------------- atomic saves


def publish(staged: Path, final: Path) -> Path:
    """Move a fully written folder into place in one rename (an older folder of that name is replaced)."""
    if final.exists():
        old = final.parent / STAGING / f"{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staged, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def atomic_checkpoints(trainer_cls: type) -> type:
    """A Trainer subclass whose `checkpoint-<step>` folders appear whole: each is written under `.staging/` and renamed
    into the run folder once every process has written its part (a kill mid-save leaves only `.staging/`)."""
    from transformers.trainer_utils import rotate_checkpoints

    class AtomicCheckpointTrainer(trainer_cls):
        _staging_dir: str | None = None

        def _get_output_dir(self, trial: Any) -> str:
            return self._staging_dir or super()._get_output_dir(trial)

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            run_dir = Path(super()._get_output_dir(trial))
            name = f"checkpoint-{self.state.global_step}"
            staging = run_dir / STAGING
            if self.args.should_save:
                shutil.rmtree(staging / name, ignore_errors=True)
            self.accelerator.wait_for_everyone()
            self._staging_dir = str(staging)
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self._staging_dir = None
            self.accelerator.wait_for_everyone()  # every rank's RNG state is in the staged folder
            if self.args.should_save:
                publish(staging / name, run_dir / name)
                best = run_dir / f"checkpoint-{self.state.best_global_step}"
                if self.state.best_global_step and best.is_dir():
                    self.state.best_model_checkpoint = str(best)
                rotate_checkpoints(
                    output_dir=str(run_dir),
                    save_total_limit=self.args.save_total_limit,
                    best_model_checkpoint=self.state.best_model_checkpoint,
                    use_mtime=True,
                )
            self.accelerator.wait_for_everyone()

    return AtomicCheckpointTrainer
