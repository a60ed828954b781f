"""Checkpoint sweep: which folders are evaluated, losses from log.json, and the best-checkpoint rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetune.bench.config import BenchConfig
from codetune.bench.problems import Problem
from codetune.bench.problems import Test as Case
from codetune.bench.sweep import load_losses, pick_best, sweep_run, sweep_targets
from codetune.cli.report_cmd import print_selection
from codetune.errors import CodetuneError

SUM_PROGRAM = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
PROBLEMS = [
    Problem(
        "sum", "sum", "Add.", "atcoder", "c", "2024-09-01", "", "easy", (Case("1 2\n", "3\n", "stdin"),), ()
    ),
    Problem(
        "dbl",
        "dbl",
        "Double.",
        "atcoder",
        "c",
        "2024-09-01",
        "",
        "medium",
        (Case("4\n", "8\n", "stdin"),),
        (),
    ),
]


def row(label: str, p: float, val: float | None, test: float | None = None, step: int | None = 1) -> dict:
    return {
        "label": label,
        "step": step,
        "pass@1": p,
        "solved": 0,
        "total": 2,
        "val_loss": val,
        "test_loss": test,
    }


def test_best_is_highest_pass_then_lowest_val_loss_never_test_loss() -> None:
    rows = [
        row("base", 0.9, 0.1, step=0),  # never a candidate
        row("checkpoint-2", 0.5, 1.0, test=0.1, step=2),
        row("checkpoint-4", 0.5, 0.8, test=9.0, step=4),
        row("checkpoint-6", 0.4, 0.1, test=0.0, step=6),
    ]
    assert pick_best(rows) == "checkpoint-4"
    rows[3]["pass@1"] = 0.6
    assert pick_best(rows) == "checkpoint-6"


def test_best_tie_without_val_loss_and_exact_ties() -> None:
    assert pick_best([row("a", 0.5, None, step=2), row("b", 0.5, 2.0, step=4)]) == "b"
    assert pick_best([row("late", 0.5, 1.0, step=8), row("early", 0.5, 1.0, step=2)]) == "early"
    assert pick_best([row("base", 0.5, 1.0, step=0)]) is None


def _make_adapter(tiny_model_dir: Path, dest: Path, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    save_random_adapter(base, dest, targets=["q_proj", "v_proj"], r=2, std=1.0, seed=seed)


def _fake_adapter(dest: Path) -> None:
    dest.mkdir(parents=True)
    (dest / "adapter_config.json").write_text("{}")


def test_targets_every_k_keep_the_last_and_final_adapter(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4, 5):
        _fake_adapter(tmp_path / f"checkpoint-{step}")
    (tmp_path / "checkpoint-9").mkdir()  # no adapter inside: ignored
    _fake_adapter(tmp_path / "adapter")
    (tmp_path / "run.json").write_text(json.dumps({"final_step": 5}))
    assert [t[:2] for t in sweep_targets(tmp_path, every=2)] == [
        ("checkpoint-2", 2),
        ("checkpoint-4", 4),
        ("checkpoint-5", 5),
    ]
    assert [t[0] for t in sweep_targets(tmp_path)] == [f"checkpoint-{s}" for s in (1, 2, 3, 4, 5)]
    (tmp_path / "run.json").write_text(json.dumps({"final_step": 6}))
    assert sweep_targets(tmp_path, every=5)[-1][:2] == ("final", 6)
    with pytest.raises(CodetuneError, match="every"):
        sweep_targets(tmp_path, every=0)


def test_losses_merge_log_entries(tmp_path: Path) -> None:
    assert load_losses(tmp_path) == {}
    log = [
        {"step": 2, "train_loss": 1.5},
        {"step": 2, "val_loss": 1.2},
        {"step": 2, "test_loss": 1.3},
        {"step": 4, "val_loss": None},
    ]
    (tmp_path / "log.json").write_text(json.dumps(log))
    assert load_losses(tmp_path) == {2: {"val_loss": 1.2, "test_loss": 1.3}}


def test_sweep_run_with_the_tiny_model(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    for step, seed in ((2, 1), (4, 2)):
        _make_adapter(tiny_model_dir, run / f"checkpoint-{step}", seed)
    _make_adapter(tiny_model_dir, run / "adapter", 3)
    (run / "run.json").write_text(json.dumps({"status": "complete", "final_step": 5}))
    log = [
        {"step": 2, "val_loss": 1.0, "test_loss": 0.1},
        {"step": 4, "val_loss": 0.9, "test_loss": 5.0},
        {"step": 5, "val_loss": 1.1, "test_loss": 0.2},
    ]
    (run / "log.json").write_text(json.dumps(log))
    # checkpoint-2's eval already holds a correct answer for `sum` (a resumed eval): it must win on pass@1
    # although checkpoint-4 has the lower validation loss.
    seeded = run / "eval" / "checkpoint-2" / "generations.jsonl"
    seeded.parent.mkdir(parents=True)
    seeded.write_text(
        json.dumps({"question_id": "sum", "sample": 0, "output": SUM_PROGRAM, "code": ""}) + "\n"
    )
    cfg = BenchConfig(max_new_tokens=4, workers=1, timeout=5)

    result = sweep_run(
        run, str(tiny_model_dir), PROBLEMS, cfg, base_dir=tmp_path / "shared-base", progress=False
    )
    assert [r["label"] for r in result["rows"]] == ["base", "checkpoint-2", "checkpoint-4", "final"]
    assert result["best"] == "checkpoint-2"
    assert result["rows"][1]["pass@1"] == 0.5 and result["rows"][1]["solved"] == 1
    assert result["rows"][2]["val_loss"] == 0.9 and result["rows"][2]["test_loss"] == 5.0
    assert result["rows"][3]["step"] == 5 and result["rows"][3]["val_loss"] == 1.1
    assert json.loads((run / "eval" / "sweep.json").read_text()) == result
    assert (tmp_path / "shared-base" / "summary.json").is_file() and not (run / "eval" / "base").exists()
    for label in ("checkpoint-2", "checkpoint-4", "final"):
        summary = json.loads((run / "eval" / label / "summary.json").read_text())
        assert summary["label"] == label and summary["adapter"].endswith(
            label if label != "final" else "adapter"
        )

    # Leave one problem out on the real sweep: with `sum` hidden every checkpoint scores 0 and checkpoint-4 (lowest val
    # loss) is chosen, which fails `sum`; with `dbl` hidden checkpoint-2 is chosen and fails `dbl`: 0 of 2.
    print_selection(run)
    assert (
        "run: leave one problem out 0.0% against 50.0% for the best of 3 checkpoints"
        in capsys.readouterr().out
    )

    # Without the seeded answer every checkpoint scores 0: the lowest validation loss decides (not test loss).
    (run / "eval" / "checkpoint-2" / "summary.json").unlink()
    seeded.unlink()
    again = sweep_run(run, str(tiny_model_dir), PROBLEMS, cfg, include_base=False, progress=False)
    assert [r["label"] for r in again["rows"]] == ["checkpoint-2", "checkpoint-4", "final"]
    if all(r["pass@1"] == 0 for r in again["rows"]):
        assert again["best"] == "checkpoint-4"


def test_a_run_is_graded_on_the_model_it_was_trained_on(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`eval --run` without --model takes the run's base model; another base model (same shapes, other weights) is
    refused before anything is generated."""
    import shutil
    import subprocess
    import sys

    run = tmp_path / "run"
    _make_adapter(tiny_model_dir, run / "checkpoint-1", 1)
    (run / "run.json").write_text(
        json.dumps({"status": "complete", "final_step": 1, "base_model": str(tiny_model_dir)})
    )
    other = shutil.copytree(tiny_model_dir, tmp_path / "other-model")
    common = ["--problems", "builtin:quickstart", "--limit", "1", "--max-new-tokens", "2", "--no-progress"]

    def codetune(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "codetune.cli", "eval", *args, *common], capture_output=True, text=True
        )

    for args in (["--run", str(run), "--model", str(other)],
                 ["--adapter", str(run / "checkpoint-1"), "--model", str(other), "--out", str(tmp_path / "e")]):  # fmt: skip
        r = codetune(*args)
        assert r.returncode == 2 and r.stderr.startswith(
            f"error: model {other}: the adapters were trained on"
        ), r.stderr
        assert f"{run / 'run.json'}: base_model" in r.stderr
    assert not (run / "eval").exists() and not (tmp_path / "e").exists()
    r = codetune("--run", str(run))
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((run / "eval" / "checkpoint-1" / "summary.json").read_text())
    assert summary["model"] == str(tiny_model_dir)
    r = codetune("--adapter", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e2"))
    assert r.returncode == 2 and r.stderr.startswith("error: --model: missing"), r.stderr
    r = codetune("--adapter", str(run / "checkpoint-1"), "--out", str(tmp_path / "e3"))  # the run's model
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "e3" / "summary.json").read_text())
    assert summary["label"] == "run/checkpoint-1" and summary["model"] == str(tiny_model_dir)
    assert "generated" in r.stdout and "already complete" not in r.stdout
    r = codetune("--adapter", str(run / "checkpoint-1"), "--out", str(tmp_path / "e3"))
    assert r.returncode == 0 and "already complete in this folder: nothing generated" in r.stdout, r.stdout
    assert "generated 2 tokens" not in r.stdout  # not the earlier run's figures as if new


def test_the_sweep_table_names_its_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codetune.bench.sweep import print_sweep

    rows = [row("checkpoint-2", 0.5, 1.0, step=2)]
    print_sweep({"rows": rows, "best": "checkpoint-2", "rule": "r"}, tmp_path / "arms" / "deep")
    assert "checkpoint sweep: deep" in capsys.readouterr().out
