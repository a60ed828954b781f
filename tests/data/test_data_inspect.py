"""`inspect` numbers and the `codetune data inspect|check` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_helpers import row, small_rows, write_jsonl
from typer.testing import CliRunner

from codetune.cli import app
from codetune.data import build_splits, inspect
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError

CODETUNE = [sys.executable, "-c", "from codetune.cli import main; main()"]


def nearest_rank(values: list[int], p: float) -> int:
    import math

    s = sorted(values)
    return s[math.ceil(p / 100 * len(s)) - 1]


def test_inspect_numbers(qwen_tokenizer) -> None:
    cfg = DataConfig(dataset="builtin:deep", max_length=230)
    result = inspect(cfg, qwen_tokenizer)
    assert result["split_source"] == "column" and result["total_rows"] == 25 and result["leaks"] == []
    built = build_splits(cfg, qwen_tokenizer)
    counts = {s: (v["rows"], v["problems"]) for s, v in result["splits"].items()}
    assert counts == {"train": (17, 8), "valid": (4, 2), "test": (4, 2)}
    assert result["splits"]["train"]["solutions_per_problem"] == {"mean": round(17 / 8, 3), "max": 3}
    for split, stats in result["splits"].items():
        lengths = [
            len(qwen_tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True)["input_ids"])
            for r in built.datasets[split]
        ]
        assert stats["tokens"] == {
            "p50": nearest_rank(lengths, 50),
            "p90": nearest_rank(lengths, 90),
            "p99": nearest_rank(lengths, 99),
            "max": max(lengths),
        }
        assert stats["truncated"] == sum(n > 230 for n in lengths)
        assert stats["truncated_share"] == round(stats["truncated"] / len(lengths), 4)
    assert 0 < result["splits"]["train"]["truncated"] < 17


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CODETUNE_HOME=str(home))
    return subprocess.run(
        [*CODETUNE, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_cli_inspect_json_matches_the_library(tmp_path: Path, qwen_tokenizer) -> None:
    proc = run_cli("data", "inspect", "builtin:deep", "--json", "--max-length", "230", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"dataset", "fingerprint", "splits", "leaks", "contamination", "max_length"}
    assert out == inspect(DataConfig(dataset="builtin:deep", max_length=230), qwen_tokenizer)
    assert (tmp_path / "tokenizers" / "qwen2.5-coder" / "tokenizer.json").is_file()


def test_truncation_is_counted_at_the_length_training_truncates_at(tmp_path: Path) -> None:
    config = tmp_path / "arm.yaml"
    config.write_text("model: x\ndata: {dataset: builtin:deep}\ntrain: {max_length: 256}\n")
    for args, length in (
        ([], 1024),  # TrainConfig's default
        (["--config", str(config)], 256),
        (["--config", str(config), "-o", "max_length=300"], 300),
        (["--config", str(config), "--max-length", "200"], 200),
    ):
        proc = run_cli("data", "inspect", "builtin:deep", "--json", *args, home=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["max_length"] == length, args


def test_cli_missing_column_is_one_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"a": "x", "b": "y"}])
    proc = run_cli("data", "inspect", str(path), home=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {path}: column 'input' not found (columns: a, b)"
    assert "Traceback" not in proc.stderr


def test_cli_inspect_table_reports_a_leak_and_uses_arm_config(tmp_path: Path, monkeypatch) -> None:
    import codetune.cli.data_cmd as data_cmd

    class FakeTok:
        eos_token = "<|im_end|>"

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [t.split() for t in texts]}

    monkeypatch.setattr(data_cmd, "default_tokenizer", lambda: FakeTok())
    rows = [*small_rows(), dict(small_rows()[0], id="dup", split="valid")]
    path = write_jsonl(tmp_path / "leaky.jsonl", rows)
    arm = tmp_path / "arm.yaml"
    arm.write_text(
        "name: deep\ndata:\n  dataset: ignored\n  format: study\n  system_prompt: null\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["data", "inspect", str(path), "--config", str(arm), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["format"] == "study" and out["dataset"] == str(path)
    assert out["splits"]["train"]["tokens"]["max"] == 1  # "print(1)<|im_end|>" is one whitespace word
    assert out["leaks"][0]["splits"] == ["train", "valid"]
    table = CliRunner().invoke(app, ["data", "inspect", str(path), "--config", str(arm)])
    assert table.exit_code == 0
    assert "leak" in table.output and "p1" in table.output


def test_cli_inspect_model_option_loads_that_tokenizer(tiny_model_dir: Path, qwen_tokenizer) -> None:
    args = ["data", "inspect", "builtin:diverse", "--model", str(tiny_model_dir), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == inspect(
        DataConfig(dataset="builtin:diverse", max_length=1024), qwen_tokenizer
    )


def test_cli_check_reports_and_drops_contamination(tmp_path: Path) -> None:
    statement = " ".join(f"word{i}" for i in range(40))
    bench = tmp_path / "lcb.jsonl"
    bench.write_text(
        json.dumps({"question_id": "abc001_a", "question_content": statement}) + "\n", encoding="utf-8"
    )
    rows = [*small_rows(), row("planted", "train", 1, statement="Intro. " + statement)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    out_file = tmp_path / "clean.jsonl"
    args = ["data", "check", str(path), "--problems", str(bench), "--drop-out", str(out_file), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(m["row"], m["problem_id"], m["question_id"]) for m in report["matches"]] == [
        (7, "planted", "abc001_a")
    ]
    assert report["kept"] == 7
    kept = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["id"] for r in kept] == [r["id"] for r in small_rows()]


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "src/codetune/bench/builtin/quickstart.jsonl").is_file(),
    reason="the bench stage's builtin:quickstart set is not present",
)
def test_builtin_quickstart_problems_resolve() -> None:
    from codetune.data import read_problems

    problems = read_problems("builtin:quickstart")
    assert problems and all(p["question_id"] for p in problems)


def test_cli_check_against_hub_problems_with_filters(tmp_path: Path, monkeypatch) -> None:
    """`--problems livecodebench/code_generation_lite` goes through the bench stage's loader (release tag, filters);
    the statement of a problem the filter leaves out is not a match."""
    import huggingface_hub

    planted = " ".join(f"word{i}" for i in range(40))
    other = " ".join(f"term{i}" for i in range(40))

    def lcb(qid: str, content: str, date: str) -> dict:
        tests = json.dumps([{"input": "1\n", "output": "1\n", "testtype": "stdin"}])
        return {
            "question_title": qid, "question_content": content, "platform": "atcoder", "question_id": qid,
            "contest_id": "abc1", "contest_date": date, "starter_code": "", "difficulty": "easy",
            "public_test_cases": tests, "private_test_cases": tests, "metadata": "{}",
        }  # fmt: skip

    fetched = []

    def fake_download(repo_id: str, filename: str, repo_type: str) -> str:
        fetched.append(filename)
        path = tmp_path / filename
        rows = [
            lcb("abc370_a", planted, "2024-09-07T00:00:00"),
            lcb("abc300_a", other, "2023-04-29T00:00:00"),
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    rows = [*small_rows(), row("p1", "train", 1, statement=planted), row("p2", "train", 1, statement=other)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    hub = "livecodebench/code_generation_lite"
    args = ["data", "check", str(path), "--problems", hub, "--release", "v5", "--json"]
    result = CliRunner().invoke(app, [*args, "--start", "2024-08", "--platform", "atcoder,leetcode"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert fetched == ["test5.jsonl"]
    assert report["benchmark_problems"] == 1 and report["filter"]["start"] == "2024-08"
    assert [(m["problem_id"], m["question_id"]) for m in report["matches"]] == [("p1", "abc370_a")]

    unfiltered = json.loads(CliRunner().invoke(app, args).output)
    assert sorted(m["question_id"] for m in unfiltered["matches"]) == ["abc300_a", "abc370_a"]

    # user mistakes are CodetuneErrors (main() prints them on one line, exit 2)
    empty = CliRunner().invoke(app, [*args, "--difficulty", "hard"]).exception
    assert isinstance(empty, CodetuneError)
    assert (
        str(empty)
        == "filter.difficulty ['hard'] (--difficulty): none of the 2 problems matches (their difficulties: easy)"
    )
    bad = CliRunner().invoke(app, [*args, "--start", "August"]).exception
    assert isinstance(bad, CodetuneError)
    assert "data check: start: expected a month as YYYY-MM" in str(bad)


def test_rows_are_shown_counted_from_one_as_in_errors(tmp_path: Path) -> None:
    import re

    quickstart = Path(__file__).resolve().parents[2] / "src/codetune/bench/builtin/quickstart.jsonl"
    lamp = json.loads(quickstart.read_text().splitlines()[0])["question_content"]
    rows = [
        *small_rows(),
        row("p9", "valid", 1, statement=small_rows()[2]["input"]),
        row("p8", "train", 1, lamp),
    ]
    for r in rows:
        r.pop("problem_id")  # no problem id column: the leak names no made-up id
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    proc = run_cli("data", "inspect", str(path), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "leak: problem is in train and valid (rows train 3; valid 8, 1 = the dataset's first)" in text, (
        text
    )
    proc = run_cli("data", "check", str(path), "--problems", "builtin:quickstart", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"│ 9 +│ - +│ train +│ qs_lamp_toggles", proc.stdout), proc.stdout
