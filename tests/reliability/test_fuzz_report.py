"""Run and eval folders edited at random: the report is written or fails with one line naming the file."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_helpers import FUZZ, attempt, json_values, paths_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from report_fixtures import write_run  # noqa: E402

from codetune.report import build_report  # noqa: E402

FILES = ["log.json", "eval/sweep.json", "eval/checkpoint-10/eval_all.json", "eval/checkpoint-20/eval_all.json",
         "eval/checkpoint-20/summary.json", "eval/base/eval_all.json", "config.yaml", "study_log.json",
         "study_summary.json", "data_report.json", "run.json"]  # fmt: skip
# The study's own file formats (--study-log, --study-summary), with made-up numbers.
STUDY_LOG = [
    {"step": 20, "train_loss": 1.1, "val_loss": 1.0, "test_loss": 1.05},
    {"step": 40, "val_loss": 0.9},
]
STUDY_SUMMARY = {"results": [{"model_name": "deep_step-20", "model_type": "deep",
                              "stats": {"pass_at_1": 30.0, "passed": 3, "total": 10}}]}  # fmt: skip


# What the data stage writes for the report's Training data section (shape of build_splits' report).
DATA_REPORT = {
    "source": "d.jsonl", "format": "chat", "answer": "column 'output'",
    "splits": {"train": {"rows": 6, "problems": 5, "solutions_per_problem": {"mean": 1.2, "max": 2}},
               "valid": {"rows": 1}, "test": {"rows": 1}},
    "leaks": [{"problem_id": "p", "splits": ["train", "valid"], "rows": [0, 6]}],
    "contamination": {"problems": "lcb.jsonl", "matches": [{"row": 1, "question_id": "q", "split": "train"}]},
    "benchmark_overlap": {"problems": 41, "rows": 2, "train_rows": 1, "question_ids": ["abc001_a"]},
    "statement_keys": {"train": ["0123abcd", "4567ef01"], "valid": ["89ab"], "test": []},
}  # fmt: skip


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[str, str, tuple, object]]:
    """1-3 edits, each (file, delete|replace, path inside the file's JSON, new value)."""
    return [
        (draw(st.sampled_from(FILES)), draw(st.sampled_from(["delete", "replace"])), draw(st.integers(0, 10**6)),
         draw(json_values | st.sampled_from([float("nan"), 1e308, -1, "checkpoint-10", [True, 1], {"x": []}])))
        for _ in range(draw(st.integers(1, 3)))
    ]  # fmt: skip


def apply(run: Path, edit: tuple[str, str, int, object]) -> None:
    name, op, pick, value = edit
    path = run / name
    doc = json.loads(path.read_text()) if name.endswith(".json") else {"group": "g"}
    paths = paths_of(doc)
    if not paths:
        doc = value
    else:
        where = paths[pick % len(paths)]
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        if op == "delete":
            del parent[where[-1]]
        else:
            parent[where[-1]] = value
    path.write_text(json.dumps(doc))  # JSON is YAML: config.yaml gets the same edits


@settings(FUZZ, max_examples=40)
@given(changes=edits())
def test_edited_run_folders(changes: list, figures: Counter) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = [write_run(Path(tmp) / arm, arm) for arm in ("deep", "diverse")]
        for run in runs:
            (run / "config.yaml").write_text("group: g\n")
            (run / "data_report.json").write_text(json.dumps(DATA_REPORT))
        (runs[0] / "study_log.json").write_text(json.dumps(STUDY_LOG))
        (runs[0] / "study_summary.json").write_text(json.dumps(STUDY_SUMMARY))
        for change in changes:
            apply(runs[0], change)
        outcome, message = attempt(
            lambda: build_report(
                runs,
                Path(tmp) / "report",
                study_logs=[runs[0] / "study_log.json"],
                study_summaries=[runs[0] / "study_summary.json"],
            ),
            figures,
        )
        if outcome == "error":
            assert tmp in message or "report:" in message, message  # names the file it could not use
        else:
            assert json.loads((Path(tmp) / "report" / "stats.json").read_text())["models"]


CASES = [  # (file, edit of its JSON, the error's field or None when the report must be written anyway)
    ("eval/checkpoint-10/eval_all.json", lambda d: d[0].update(graded_list=0.5), "entry 0: graded_list"),
    ("eval/base/eval_all.json", lambda d: d[1].update(code_list=True), "entry 1: code_list"),
    ("eval/checkpoint-20/eval_all.json", lambda d: d[2].update({"pass@1": "all"}), "entry 2: pass@1"),
    (
        "log.json",
        lambda d: d[3].update(step=float("nan")),
        "entry 3: expected an object with a numeric 'step'",
    ),
    ("eval/checkpoint-20/summary.json", lambda d: d.update(solved=float("nan")), None),
    ("eval/checkpoint-20/summary.json", lambda d: d.update({"pass@1": 1e308}), None),
    ("study_summary.json", lambda d: d["results"].append([1]), "results[1]: expected an object"),
]


def test_the_bad_fields_the_fuzzer_found(tmp_path: Path, figures: Counter) -> None:
    for i, (name, edit, field) in enumerate(CASES):
        run = write_run(tmp_path / f"case{i}", "deep")
        (run / "study_summary.json").write_text(json.dumps(STUDY_SUMMARY))
        doc = json.loads((run / name).read_text())
        edit(doc)
        (run / name).write_text(json.dumps(doc))
        summary = [run / "study_summary.json"]
        outcome, result = attempt(
            lambda run=run, summary=summary: build_report([run], run / "report", study_summaries=summary),
            figures,
        )
        if field is None:
            assert outcome == "ok", result
            model = json.loads((run / "report" / "stats.json").read_text())["models"][1]
            assert model["pass@1"] == 4 / 6 and model["solved"] == 4  # from the per-problem rows
        else:
            assert outcome == "error" and str(run / name) in result and field in result, result
