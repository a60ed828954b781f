"""Small run folders and eval folders written the way train and bench write them, for report tests."""

from __future__ import annotations

import json
from pathlib import Path

# Same location as tests/conftest.py SHARED: ../shared beside the clone.
SHARED = Path(__file__).resolve().parents[3] / "shared"
PROBLEMS = [f"abc9{i}_a" for i in range(6)]
BASE = [1, 0, 0, 1, 0, 0]
ARMS = {
    "deep": {10: [1, 0, 0, 1, 0, 0], 20: [1, 1, 0, 1, 1, 0], 30: [1, 1, 0, 0, 1, 0]},
    "diverse": {10: [0, 0, 0, 1, 0, 0], 20: [1, 0, 1, 1, 0, 0], 30: [1, 0, 1, 0, 0, 0]},
}
VAL = {"deep": {10: 0.91, 20: 0.82, 30: 0.85}, "diverse": {10: 0.95, 20: 0.88, 30: 0.86}}


def write_eval(
    folder: Path, label: str, solved: list[int], step: int | None, adapter: str | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for qid, ok in zip(PROBLEMS, solved, strict=True):
        code = (
            f"print(sum(map(int, input().split())))  # {label} {qid}"
            if ok
            else f"print('<b>{label}</b> & <script>x</script>')"
        )
        rows.append(
            {
                "question_id": qid,
                "question_title": f"Problem {qid}",
                "platform": "atcoder",
                "difficulty": "easy",
                "contest_date": "2024-09-01T00:00:00",
                "output_list": [f"```python\n{code}\n```"],
                "code_list": [code],
                "graded_list": [bool(ok)],
                "pass@1": float(ok),
                "metadata": [{"verdicts": ["AC" if ok else "WA"]}],
            }
        )
    summary = {
        "label": label,
        "model": "tiny",
        "adapter": adapter,
        "step": step,
        "prompt_style": "lcb",
        "extract": "lcb",
        "compare": "lcb",
        "tests": "public only",
        "n": 1,
        "temperature": 0.0,
        "max_new_tokens": 64,
        "problems": {"source": "fixture.jsonl", "count": len(PROBLEMS), "sha256": "0" * 64},
        "pass@1": sum(solved) / len(solved),
        "pass@k": {"1": sum(solved) / len(solved)},
        "solved": sum(solved),
        "total": len(solved),
        "by_difficulty": {},
        "by_platform": {},
    }
    (folder / "eval_all.json").write_text(json.dumps(rows, indent=1))
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))


def write_run(folder: Path, arm: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": "complete", "arm": arm, "final_step": 30}))
    log = []
    for step in range(5, 35, 5):
        row = {"step": step, "epoch": step / 30, "train_loss": 1.2 - step / 50, "learning_rate": 1e-4}
        if step in VAL[arm]:
            row |= {"val_loss": VAL[arm][step], "test_loss": VAL[arm][step] - 0.05}
        log.append(row)
    (folder / "log.json").write_text(json.dumps(log))
    rows = [{"label": "base", "step": 0, "pass@1": sum(BASE) / 6, "solved": sum(BASE), "total": 6}]
    write_eval(folder / "eval" / "base", "base", BASE, None)
    for step, solved in ARMS[arm].items():
        write_eval(
            folder / "eval" / f"checkpoint-{step}", f"checkpoint-{step}", solved, step, f"checkpoint-{step}"
        )
        rows.append(
            {
                "label": f"checkpoint-{step}",
                "step": step,
                "pass@1": sum(solved) / 6,
                "solved": sum(solved),
                "total": 6,
                "val_loss": VAL[arm][step],
                "test_loss": VAL[arm][step] - 0.05,
            }
        )
    sweep = {"rows": rows, "best": "checkpoint-20", "rule": "highest pass@1, ties by lowest val_loss"}
    (folder / "eval" / "sweep.json").write_text(json.dumps(sweep))
    return folder
