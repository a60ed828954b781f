"""Stage state of an experiment folder (`state.json`), written atomically after every change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from codetune.files import atomic_write_json, read_json


class StageState:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "state.json"
        self.data: dict[str, Any] = read_json(self.path) if self.path.is_file() else {"stages": {}}

    def status(self, stage: str) -> str:
        return self.data["stages"].get(stage, {}).get("status", "pending")

    def is_complete(self, stage: str) -> bool:
        return self.status(stage) == "complete"

    def mark(self, stage: str, status: str, **info: Any) -> None:
        entry = self.data["stages"].setdefault(stage, {})
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        if status == "running":
            entry["started"] = now
            entry.pop("error", None)
        else:
            entry["finished"] = now
        entry["status"] = status
        entry.update(info)
        atomic_write_json(self.path, self.data)
