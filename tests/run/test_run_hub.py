"""The study's own experiment file runs on the hub path: `experiments/deep_vs_diverse.yaml`, shrunk with `-o` only,
takes its model, both datasets and the LiveCodeBench release by hub id from a local stand-in for the hub
(tests/fake_hub.py), through huggingface_hub's, transformers' and datasets' real requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "src" / "codetune" / "data" / "samples"
QUICKSTART = ROOT / "src" / "codetune" / "bench" / "builtin" / "quickstart.jsonl"
SHRINK = {
    "train.max_steps": 2,
    "train.micro_batch_size": 2,
    "train.effective_batch_size": 2,
    "train.max_length": 128,
    "train.logging_steps": 1,
    "train.eval_steps": 1,
    "train.save_steps": 1,
    "train.eval_max_examples": 2,
    "bench.max_new_tokens": 12,
    "bench.batch_size": 8,
    "bench.timeout": 3,
}


def release_files() -> tuple[dict[str, bytes], list[str]]:
    """The shipped problems as LiveCodeBench hub files test.jsonl..test6.jsonl, dated and placed so that the
    study's filter (release_v5 = the first five files, AtCoder, easy, 2024-08..2025-02) keeps only some: returns the
    files and the ids the filter must keep."""
    rows = [json.loads(line) for line in QUICKSTART.read_text().splitlines() if line.strip()]
    files: dict[str, list[dict]] = {}
    keep = []
    for i, row in enumerate(rows):
        row = {
            **row,
            "platform": "atcoder",
            "difficulty": "easy",
            "contest_date": f"2024-{8 + i % 4:02d}-10T00:00:00",
        }
        name = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl"][
            i % 6
        ]
        if i == 1:
            row["platform"] = "leetcode"
        elif i == 2:
            row["difficulty"] = "medium"
        elif i == 3:
            row["contest_date"] = "2024-07-31T00:00:00"
        elif name != "test6.jsonl":  # test6 is release_v6: not in release_v5
            keep.append(row["question_id"])
        files.setdefault(name, []).append(row)
    return {k: "".join(json.dumps(r) + "\n" for r in v).encode() for k, v in files.items()}, keep


def test_the_study_experiment_runs_from_the_hub(fake_hub, tiny_model_dir: Path, tmp_path: Path) -> None:
    model = {
        str(f.relative_to(tiny_model_dir)): f.read_bytes() for f in tiny_model_dir.rglob("*") if f.is_file()
    }
    exp = yaml.safe_load((ROOT / "experiments" / "deep_vs_diverse.yaml").read_text())
    fake_hub.add_repo(exp["model"], model)
    for arm, sample in zip(exp["arms"], ("deep", "diverse"), strict=True):
        fake_hub.add_repo(
            f"datasets/{arm['data']['dataset']}",
            {f"{sample}.jsonl": (SAMPLES / f"{sample}.jsonl").read_bytes()},
        )
    problems, keep = release_files()
    fake_hub.add_repo(f"datasets/{exp['bench']['problems']}", problems)

    out = tmp_path / "study"
    overrides = [a for k, v in {**SHRINK, "out": str(out)}.items() for a in ("-o", f"{k}={v}")]
    env = {**fake_hub.env(tmp_path / "hf-home"), "CODETUNE_NO_PROGRESS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "codetune.cli",
            "run",
            str(ROOT / "experiments" / "deep_vs_diverse.yaml"),
            *overrides,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]

    base = json.loads((out / "base" / "eval" / "summary.json").read_text())
    assert base["model"] == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    assert base["problems"]["source"] == "livecodebench/code_generation_lite"
    graded = [row["question_id"] for row in json.loads((out / "base" / "eval" / "eval_all.json").read_text())]
    assert sorted(graded) == sorted(keep) and len(keep) >= 3
    for arm in exp["arms"]:
        report = json.loads((out / "arms" / arm["name"] / "data_report.json").read_text())
        assert report["source"] == arm["data"]["dataset"]
        assert report["splits"]["train"]["rows"] > 0
    assert (out / "report" / "report.html").is_file()
    fetched = {
        line.rsplit("/", 1)[-1]
        for line in fake_hub.requests
        if line.startswith("GET /datasets/livecodebench/")
    }
    assert fetched == {"test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl"}
    assert any(
        line.endswith("/model.safetensors") for line in fake_hub.requests if line.startswith("GET /Qwen/")
    )
