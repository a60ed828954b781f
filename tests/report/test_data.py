"""The report's Training data section, from data reports the data stage writes (benchmark overlap included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from codetune.data import build_splits
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError
from codetune.report import build_report

BENCH_TEXT = " ".join(f"token{i}" for i in range(40))
BENCHMARK = [
    {"question_id": "abc001_a", "question_content": BENCH_TEXT},
    {
        "question_id": "abc002_b",
        "question_content": "Print the product of all primes below N modulo 998244353.",
    },
]


def data_file(path: Path, planted: bool) -> Path:
    rows = []
    for k in range(6):
        split = "train" if k < 4 else ("valid" if k == 4 else "test")
        for j in range(2 if k == 0 else 1):
            rows.append(
                {
                    "input": f"Problem {k}: print {k} plus one.",
                    "output": f"print({k + j} + 1)",
                    "split": split,
                }
            )
    if planted:  # the benchmark statement, lightly edited, in train and in valid
        rows.append({"input": "Intro. " + BENCH_TEXT, "output": "print(0)", "split": "train"})
        rows.append({"input": BENCH_TEXT + " Outro.", "output": "print(0)", "split": "valid"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_data_report(run: Path, tokenizer, planted: bool, tokens: int) -> dict:
    cfg = DataConfig(dataset=str(data_file(run / "data.jsonl", planted)))
    report = build_splits(cfg, tokenizer, benchmark=BENCHMARK).report
    (run / "data_report.json").write_text(json.dumps(report))
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "tokens_seen": tokens}))
    return report


def test_training_data_section(fixture_runs: dict[str, Path], qwen_tokenizer, tmp_path: Path) -> None:
    deep = write_data_report(fixture_runs["deep"], qwen_tokenizer, planted=True, tokens=12345)
    write_data_report(fixture_runs["diverse"], qwen_tokenizer, planted=False, tokens=999)
    assert deep["splits"]["train"]["rows"] == 6  # overlapping rows are reported, not dropped
    assert deep["benchmark_overlap"]["question_ids"] == ["abc001_a"]

    build_report([fixture_runs["deep"], fixture_runs["diverse"]], tmp_path / "r")
    md = (tmp_path / "r" / "results.md").read_text()
    section = md.split("## Training data")[1].split("## ")[0]
    assert "| deep | " in section and "1 of 2 problems (abc001_a): 2 rows, 1 in train | 12,345 |" in section
    assert "| diverse | " in section and "| none of 2 problems | 999 |" in section
    assert "| column 'output' (chat) | 5 (4) | 1.25 (max 2) | 1 / 1 | 0 |" in section  # diverse's splits
    assert "deep's training data overlaps 1 benchmark problem(s) (abc001_a) in 1 training rows" in md
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [d["arm"] for d in stats["data"]["arms"]] == ["deep", "diverse"]
    assert stats["data"]["arms"][0]["benchmark_overlap"]["train_rows"] == 1
    # the same four problems in both arms' train splits; deep also trains on the planted one
    shared = (
        "deep and diverse share 4 training problems (same normalized statement): 80% of deep's 5, 100% of"
    )
    assert shared in section and stats["data"]["shared_train_problems"] == [
        {"a": "deep", "b": "diverse", "shared": 4, "a_problems": 5, "b_problems": 4}
    ]
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<h2>Training data</h2>" in html
    assert (
        "when <code>codetune run</code> checked them" in html
        and "`" not in html.split("<h2>Training data")[1]
    )


def test_seeded_runs_of_one_arm_make_one_row(
    fixture_runs: dict[str, Path], qwen_tokenizer, tmp_path: Path
) -> None:
    import shutil

    seeds = [tmp_path / "arms" / f"deep-seed{k}" for k in (1, 2)]
    for k, run in enumerate(seeds):
        shutil.copytree(fixture_runs["deep"], run)
        (run / "config.yaml").write_text(yaml.safe_dump({"model": "m", "group": "deep"}))
        write_data_report(run, qwen_tokenizer, planted=False, tokens=100 * (k + 1))
    build_report(seeds, tmp_path / "r")
    section = (tmp_path / "r" / "results.md").read_text().split("## Training data")[1].split("## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| deep")]
    assert len(rows) == 1 and rows[0].startswith("| deep (2 runs) |") and rows[0].endswith("| 150 (mean) |")


def test_configured_contamination_check_is_shown_when_run_did_not_check(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    report = {
        "source": "d.jsonl",
        "splits": {"train": {"rows": 3, "problems": 3}},
        "contamination": {
            "problems": "lcb.jsonl",
            "matches": [{"row": 2, "question_id": "q9", "split": "train"}],
        },
    }
    (fixture_runs["deep"] / "data_report.json").write_text(json.dumps(report))
    build_report([fixture_runs["deep"]], tmp_path / "r")
    md = (tmp_path / "r" / "results.md").read_text()
    assert "| 1 problems (q9): 1 rows, 1 in train |" in md and "overlaps 1 benchmark problem(s) (q9)" in md


@pytest.mark.parametrize(
    "content",
    [
        {"splits": "x", "leaks": 5, "benchmark_overlap": {"rows": "a", "question_ids": 3}},
        {"splits": {"train": []}, "contamination": {"problems": 1, "matches": "m"}},
        {"benchmark_overlap": {"rows": 2, "train_rows": 1, "question_ids": ["q", 1], "problems": "41"}},
        {"contamination": {"problems": "x.jsonl", "matches": [{"row": [1], "question_id": "q"}, {"row": 2}]}},
    ],
)
def test_odd_data_reports_do_not_break_the_report(
    fixture_runs: dict[str, Path], tmp_path: Path, content
) -> None:
    (fixture_runs["deep"] / "data_report.json").write_text(json.dumps(content))
    build_report([fixture_runs["deep"]], tmp_path / "r")
    assert "## Training data" in (tmp_path / "r" / "results.md").read_text()


def test_data_report_that_is_not_an_object(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    (fixture_runs["deep"] / "data_report.json").write_text("[1, 2]")
    with pytest.raises(CodetuneError, match=r"data_report.json: expected a JSON object"):
        build_report([fixture_runs["deep"]], tmp_path / "r")


def test_decontaminated_data_drops_the_overlapping_rows(
    fixture_runs: dict[str, Path], qwen_tokenizer, tmp_path: Path
) -> None:
    cfg = DataConfig(dataset=str(data_file(tmp_path / "d.jsonl", planted=True)))
    built = build_splits(cfg, qwen_tokenizer, benchmark=BENCHMARK, drop_benchmark=True)
    report = built.report
    # the planted rows are gone; the configured contamination check's own count does not include them
    assert report["splits"]["train"]["rows"] == 5 and report["splits"]["valid"]["rows"] == 1
    assert report["contamination"]["dropped"] == 0
    assert all("token0" not in ex["prompt"][-1]["content"] for ds in built.datasets.values() for ex in ds)
    assert report["benchmark_overlap"] | {"matches": None} == {
        "problems": 2,
        "ngram": 13,
        "threshold": 0.5,
        "rows": 2,
        "train_rows": 0,
        "dropped": 2,
        "question_ids": ["abc001_a"],
        "matches": None,
    }
    (fixture_runs["deep"] / "data_report.json").write_text(json.dumps(report))
    build_report([fixture_runs["deep"]], tmp_path / "r")
    md = (tmp_path / "r" / "results.md").read_text()
    assert "1 of 2 problems (abc001_a): 2 rows, 0 in train, 2 dropped |" in md and "overlaps" not in md


def test_a_split_emptied_by_decontamination_says_so(qwen_tokenizer, tmp_path: Path) -> None:
    rows = [
        {"input": f"Problem {k}: print {k}.", "output": f"print({k})", "split": "train"} for k in range(3)
    ]
    rows += [{"input": f"Task {k}: print -{k}.", "output": f"print(-{k})", "split": "test"} for k in range(2)]
    rows.append({"input": BENCH_TEXT, "output": "print(0)", "split": "valid"})  # valid's only row
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        CodetuneError, match="split 'valid' is empty: each of its rows overlaps the benchmark"
    ):
        build_splits(DataConfig(dataset=str(path)), qwen_tokenizer, benchmark=BENCHMARK, drop_benchmark=True)
    assert (
        build_splits(DataConfig(dataset=str(path)), qwen_tokenizer, benchmark=BENCHMARK).report["splits"][
            "valid"
        ]["rows"]
        == 1
    )
