"""Small row factories shared by the data tests."""

from __future__ import annotations

import json
from pathlib import Path


def row(pid: str, split: str | None = "train", k: int = 1, statement: str | None = None) -> dict:
    r = {
        "id": f"{pid}-{k}",
        "problem_id": pid,
        "input": statement or f"Problem {pid}: read two numbers and print their sum plus {pid}.",
        "output": f"Reasoning for {pid}.\n\n```python\nprint({k})\n```",
        "solution": f"print({k})",
    }
    if split is not None:
        r["split"] = split
    return r


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def small_rows() -> list[dict]:
    """Three problems in train (two with two solutions), one in valid, one in test."""
    return [
        row("p1", "train", 1),
        row("p1", "train", 2),
        row("p2", "train", 1),
        row("p3", "train", 1),
        row("p3", "train", 2),
        row("p4", "valid", 1),
        row("p5", "test", 1),
    ]
