"""benchmarks/program_stop_tokens.py counts what ending answers at their program saves, on an eval folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "program_stop_tokens.py"


def test_counts_tokens_both_ways(tiny_model_dir: Path, tmp_path: Path) -> None:
    answers = [
        "Plan.\n```python\nprint(1)\n```\nIt prints one, as asked.",
        "no code",
        "```python\nx = 1\n```",
    ]
    with open(tmp_path / "generations.jsonl", "w") as f:
        for i, text in enumerate(answers):
            f.write(json.dumps({"question_id": f"q{i}", "sample": 0, "output": text}) + "\n")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--tokenizer", str(tiny_model_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout)[str(tmp_path)]
    assert got["answers"] == 3 and got["answers_ending_early"] == 1 and got["same_program"] == 3
    assert 0 < got["tokens_ended_at_program"] < got["tokens_full"]
