"""Checkpoint selection: the benchmark-chosen best is optimistic, leave one problem out is not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import ARMS, PROBLEMS, write_eval

from codetune.report import build_report
from codetune.report.inputs import EvalResult, read_run
from codetune.report.selection import Candidate, candidates, select


def synthetic(rates: list[float], problems: int, rng: np.random.Generator) -> list[Candidate]:
    """Checkpoints solving each problem independently with the given true rates (one greedy sample each)."""
    cands = []
    for i, rate in enumerate(rates):
        rows = {
            f"q{j}": {"question_id": f"q{j}", "graded_list": [bool(rng.random() < rate)]}
            for j in range(problems)
        }
        result = EvalResult(name=f"checkpoint-{i}", path=Path("."), summary={}, rows=rows)
        cands.append(Candidate(f"checkpoint-{i}", i, None, result))
    return cands


def average(rates: list[float], repeats: int = 300) -> tuple[float, float]:
    """Mean benchmark-selected Pass@1 and mean leave-one-out estimate over seeded repeats of 41 problems."""
    rng = np.random.default_rng(0)
    best, loo = [], []
    for _ in range(repeats):
        sel = select("arm", synthetic(rates, 41, rng))
        assert sel is not None
        best.append(sel.best.pass_at_1)
        loo.append(sel.loo_pass)
    return float(np.mean(best)), float(np.mean(loo))


def test_best_of_many_equal_checkpoints_is_optimistic_and_leave_one_out_is_not() -> None:
    # 27 checkpoints (the study's Diverse arm, one every 20 steps) that are all equally good: on new problems any
    # choice solves 30%, yet the best on these 41 problems looks much better.
    best, loo = average([0.3] * 27)
    assert best - 0.3 > 0.08, best
    assert abs(loo - 0.3) < 0.02, loo


def test_leave_one_out_finds_a_truly_better_checkpoint() -> None:
    best, loo = average([0.3] * 10 + [0.7] + [0.3] * 10)
    assert abs(loo - 0.7) < 0.03, loo
    assert best >= loo


def test_hand_case_on_the_fixture_runs(fixture_runs: dict[str, Path]) -> None:
    sel = select("diverse", candidates(read_run(fixture_runs["diverse"])))
    assert sel is not None
    # Hiding problem 3 leaves checkpoint-20 and -30 tied at 2 solved; -30 has the lower val loss and fails problem 3.
    assert sel.loo_labels == {q: "checkpoint-30" if q == PROBLEMS[3] else "checkpoint-20" for q in PROBLEMS}
    assert sel.loo_outcomes == {q: bool(ARMS["diverse"][20][i]) and i != 3 for i, q in enumerate(PROBLEMS)}
    assert (sel.best.label, sel.best.solved) == ("checkpoint-20", 3)
    assert sel.loo_pass == pytest.approx(2 / 6)
    assert sel.optimism == pytest.approx(1 / 6)
    assert sel.lowest_val is not None and sel.lowest_val.label == "checkpoint-30"
    assert sel.last.label == "checkpoint-30"


def test_several_samples_select_on_the_share_that_passed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    rows = []
    for step, graded in {10: [True, False, False], 20: [True, True, False]}.items():
        write_eval(run / "eval" / f"checkpoint-{step}", f"checkpoint-{step}", [1, 0, 0, 0, 0, 0], step)
        path = run / "eval" / f"checkpoint-{step}" / "eval_all.json"
        data = json.loads(path.read_text())
        data[1]["graded_list"] = graded
        path.write_text(json.dumps(data))
        rows.append({"label": f"checkpoint-{step}", "step": step, "pass@1": 0, "val_loss": None})
    (run / "eval" / "sweep.json").write_text(json.dumps({"rows": rows, "best": "checkpoint-20"}))
    sel = select("run", candidates(read_run(run)))
    assert sel is not None
    assert sel.best.label == "checkpoint-20"
    assert sel.best.pass_at_1 == pytest.approx((1 + 2 / 3) / 6)
    # Problem 1 hidden, the two tie on problem 0 and the earlier step wins; it passed 1 of 3 samples there.
    assert sel.loo_labels[PROBLEMS[1]] == "checkpoint-10"
    assert sel.loo_pass == pytest.approx((1 + 1 / 3) / 6)


def test_report_has_the_selection_section(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    build_report([fixture_runs["deep"], fixture_runs["diverse"]], out, base=fixture_runs["base"])
    stats = json.loads((out / "stats.json").read_text())
    runs = {r["run"]: r for r in stats["selection"]["runs"]}
    assert runs["diverse"]["leave_one_problem_out"]["solved"] == 2
    assert runs["diverse"]["best_on_benchmark"]["solved"] == 3
    assert runs["deep"]["optimism"] == pytest.approx(0.0)
    pair = next(p for p in stats["selection"]["pairs_leave_one_out"] if p["b"] == "diverse (leave-one-out)")
    assert (pair["a"], pair["only_a"], pair["only_b"]) == ("base", 1, 1)
    md = (out / "results.md").read_text()
    assert "## Checkpoint selection" in md
    assert "| diverse | 3 | checkpoint-20: 50.0% (3/6) | 33.3% [9.7, 70.0] (2/6) |" in md
    assert "Checkpoint selection</h2>" in (out / "report.html").read_text()


def test_one_checkpoint_has_nothing_to_select(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    run = read_run(fixture_runs["deep"])
    run.sweep_rows = [r for r in run.sweep_rows if r["label"] in ("base", "checkpoint-20")]
    assert select("deep", candidates(run)) is None


def test_report_command_prints_the_estimate(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "report", fixture_runs["diverse"], "--out", tmp_path / "r"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "diverse: leave one problem out 33.3% against 50.0% for the best of 3 checkpoints" in r.stdout
