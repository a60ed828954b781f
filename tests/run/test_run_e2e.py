"""A reduced quickstart (tiny model) end to end: every artifact exists and agrees; kills at any stage resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def experiment(tmp_path: Path, model: Path, out: Path) -> Path:
    data = {
        "name": "tiny",
        "model": str(model),
        "out": str(out),
        "train": {
            "max_steps": 3,
            "micro_batch_size": 2,
            "effective_batch_size": 2,
            "max_length": 128,
            "logging_steps": 1,
            "eval_steps": 1,
            "save_steps": 1,
            "eval_max_examples": 2,
            "learning_rate": 1e-3,
            "warmup_ratio": 0.0,
        },
        "arms": [
            {"name": "deep", "data": {"dataset": "builtin:deep", "max_rows": 8}},
            {"name": "diverse", "data": {"dataset": "builtin:diverse", "max_rows": 8}},
        ],
        "bench": {
            "problems": "builtin:quickstart",
            "filter": {"limit": 3},
            "max_new_tokens": 24,
            "batch_size": 4,
            "timeout": 3,
        },
        "evaluate": {"base": True, "checkpoints": "all", "every": 2},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def codetune(*args: str) -> subprocess.Popen:
    env = {**os.environ, "CODETUNE_NO_PROGRESS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "codetune.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def run_to_end(*args: str) -> str:
    p = codetune(*args)
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    return out


def kill_when(p: subprocess.Popen, ready: callable, timeout: float = 600) -> None:
    t0 = time.time()
    while not ready():
        assert p.poll() is None, "finished before the kill point: " + (p.stdout.read() or "")[-2000:]
        assert time.time() - t0 < timeout, "kill point never reached"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def results(out: Path) -> dict:
    res = {}
    for arm in ("deep", "diverse"):
        log = json.loads((out / "arms" / arm / "log.json").read_text())
        res[f"{arm}.log"] = [
            (r["step"], round(r["val_loss"], 3), round(r["test_loss"], 3))
            for r in log
            if r.get("val_loss") is not None
        ]
        sweep = json.loads((out / "arms" / arm / "eval" / "sweep.json").read_text())
        res[f"{arm}.sweep"] = [(r["label"], r["pass@1"]) for r in sweep["rows"]]
        res[f"{arm}.best"] = sweep["best"]
    base = json.loads((out / "base" / "eval" / "eval_all.json").read_text())
    res["base"] = [(r["question_id"], r["code_list"], r["graded_list"]) for r in base]
    return res


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    tmp = tmp_path_factory.mktemp("clean")
    out = tmp / "exp"
    stdout = run_to_end("run", str(experiment(tmp, tiny_model_dir, out)))
    assert "report.html" in stdout
    return out


def test_every_artifact_exists_and_agrees(clean_run: Path) -> None:
    out = clean_run
    state = json.loads((out / "state.json").read_text())["stages"]
    assert all(s["status"] == "complete" for s in state.values()), state
    assert set(state) == {
        "prepare",
        "train:deep",
        "train:diverse",
        "eval",
        "report",
    }
    for arm in ("deep", "diverse"):
        run = out / "arms" / arm
        log = json.loads((run / "log.json").read_text())
        assert [r["step"] for r in log if r.get("val_loss") is not None] == [1, 2, 3]
        assert all(r["test_loss"] is not None for r in log if r.get("val_loss") is not None)
        for step in (1, 2, 3):
            assert (run / f"checkpoint-{step}" / "adapter_config.json").is_file()
        sweep = json.loads((run / "eval" / "sweep.json").read_text())
        labels = [r["label"] for r in sweep["rows"]]
        assert (
            "checkpoint-2" in labels and "checkpoint-3" in labels and "checkpoint-1" not in labels
        )  # every: 2 (+final)
        assert sweep["best"] in labels
        for row in sweep["rows"]:
            summary = json.loads((run / "eval" / row["label"] / "summary.json").read_text())
            assert summary["pass@1"] == row["pass@1"] and summary["total"] == 3
        overlap = json.loads((run / "data_report.json").read_text())["benchmark_overlap"]
        assert (
            overlap["problems"] == 3 and overlap["rows"] == 0
        )  # the shipped samples never copy benchmark problems
    base = json.loads((out / "base" / "eval" / "summary.json").read_text())
    assert base["total"] == 3
    html = (out / "report" / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html
    assert (out / "report" / "results.md").is_file()
    results = (out / "report" / "results.md").read_text()
    assert "| none of 3 problems |" in results
    assert (
        "deep and diverse share 0 training problems" in results
    )  # the shipped sets have no problem in common


def test_rerun_skips_finished_stages(clean_run: Path) -> None:
    before = (clean_run / "base" / "eval" / "summary.json").stat().st_mtime_ns
    out = run_to_end("run", str(clean_run.parent / "exp.yaml"))
    assert out.count("skip") >= 5
    assert (clean_run / "base" / "eval" / "summary.json").stat().st_mtime_ns == before


def test_dry_run_of_a_finished_experiment_skips_every_stage(clean_run: Path) -> None:
    p = codetune("run", str(clean_run.parent / "exp.yaml"), "--dry-run")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out[-2000:]
    assert (
        out.count("complete: skipped") == 5
        and "every stage is complete" in out
        and "total estimate" not in out
    )


def test_changed_settings_in_same_folder_are_refused(clean_run: Path) -> None:
    p = codetune("run", str(clean_run.parent / "exp.yaml"), "-o", "train.learning_rate=0.5")
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2 and "other settings" in out and "Traceback" not in out


def test_sigkill_in_training_and_in_evaluation_then_resume(
    clean_run: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    out = tmp_path / "exp"
    exp = experiment(tmp_path, tiny_model_dir, out)
    # 1) killed in the middle of training: after the first checkpoint of the first arm exists
    kill_when(
        codetune("run", str(exp)),
        lambda: (out / "arms" / "deep" / "checkpoint-1" / "adapter_model.safetensors").exists(),
    )
    state = json.loads((out / "state.json").read_text())["stages"]
    assert state["train:deep"]["status"] == "running"
    # 2) killed in the middle of evaluation: once the base model's first generations are on disk
    kill_when(
        codetune("run", str(exp)),
        lambda: (
            (out / "base" / "eval" / "generations.jsonl").exists()
            and (out / "base" / "eval" / "generations.jsonl").stat().st_size > 0
        ),
    )
    run_to_end("run", str(exp))
    assert results(out) == results(clean_run)
