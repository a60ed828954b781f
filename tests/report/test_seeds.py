"""Arms trained once per seed: per-seed honest Pass@1, their mean, and a two-level bootstrap interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import BASE, write_eval

from codetune.report import build_report
from codetune.report.seeds import bootstrap


def seeded_run(folder: Path, group: str, checkpoints: dict[int, list[int]]) -> Path:
    rows = []
    for step, solved in checkpoints.items():
        write_eval(folder / "eval" / f"checkpoint-{step}", f"checkpoint-{step}", solved, step)
        rows.append(
            {"label": f"checkpoint-{step}", "step": step, "pass@1": sum(solved) / 6, "val_loss": None}
        )
    best = max(rows, key=lambda r: r["pass@1"])["label"]
    (folder / "eval" / "sweep.json").write_text(json.dumps({"rows": rows, "best": best}))
    (folder / "config.yaml").write_text(f"group: {group}\n")
    return folder


def test_seed_noise_widens_the_interval() -> None:
    # Seed 1 solves all 41 problems and seed 2 none: averaging the seeds first would hide that (every problem at
    # 0.5, an interval of zero width); resampling the seeds shows an arm that is anywhere from 0% to 100%.
    disagree = np.array([[1.0] * 41, [0.0] * 41])
    assert bootstrap([disagree]) == (0.0, 1.0)
    assert bootstrap([disagree.mean(axis=0, keepdims=True)]) == (0.5, 0.5)


def test_pairs_share_the_problem_draw() -> None:
    # Two arms with the same outcomes and no seed noise: with one problem draw for both, every resample differs by 0.
    same = np.tile((np.random.default_rng(1).random(41) < 0.5).astype(float), (3, 1))
    assert bootstrap([same, same.copy()]) == (0.0, 0.0)
    strong, weak = np.ones((3, 41)), np.zeros((3, 41))
    strong[:, :5] = weak[:, :5] = 1.0
    assert bootstrap([strong, weak])[0] > 0.6


def test_report_seeds_section(tmp_path: Path) -> None:
    runs = [
        # Two checkpoints: leave one problem out picks checkpoint-20 for every problem but problem 4, where
        # hiding it ties the two at 3 solved and the earlier step wins: 3/6.
        seeded_run(tmp_path / "deep-seed1", "deep", {10: [1, 1, 0, 1, 0, 0], 20: [1, 1, 0, 1, 1, 0]}),
        # One checkpoint: nothing selected, its own outcomes: 2/6.
        seeded_run(tmp_path / "deep-seed2", "deep", {10: [1, 0, 0, 0, 0, 1]}),
        seeded_run(tmp_path / "diverse-seed1", "diverse", {10: [1, 0, 0, 0, 0, 0]}),
        seeded_run(tmp_path / "diverse-seed2", "diverse", {10: [1, 0, 0, 0, 0, 0]}),
    ]
    write_eval(tmp_path / "base", "base", BASE, None)
    out = tmp_path / "report"
    build_report(runs, out, base=tmp_path / "base")
    stats = json.loads((out / "stats.json").read_text())
    arms = {g["arm"]: g for g in stats["seeds"]["arms"]}
    assert arms["deep"]["pass@1_per_seed"] == {
        "deep-seed1": pytest.approx(3 / 6),
        "deep-seed2": pytest.approx(2 / 6),
    }
    assert arms["deep"]["pass@1_mean"] == pytest.approx(5 / 12)
    assert arms["deep"]["best_on_benchmark_mean"] == pytest.approx((4 / 6 + 2 / 6) / 2)
    assert arms["diverse"]["seed_sd"] == 0.0
    pair = next(p for p in stats["seeds"]["pairs"] if (p["a"], p["b"]) == ("deep", "diverse"))
    assert pair["diff"] == pytest.approx(5 / 12 - 1 / 6)
    assert pair["n_seeds"] == [2, 2] and pair["problems"] == 6
    base_pair = next(p for p in stats["seeds"]["pairs"] if (p["a"], p["b"]) == ("base", "deep"))
    assert base_pair["diff"] == pytest.approx(sum(BASE) / 6 - 5 / 12)
    assert stats["selection"]["runs"][0]["run"] == "deep-seed1"
    assert stats["selection"]["pairs_leave_one_out"] == []  # arms are compared in the Seeds section
    md = (out / "results.md").read_text()
    assert "| deep | 2 | seed1 50.0%, seed2 33.3% | 41.7% [" in md


def test_no_seeds_section_without_groups(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    build_report([fixture_runs["deep"], fixture_runs["diverse"]], tmp_path / "r", base=fixture_runs["base"])
    assert json.loads((tmp_path / "r" / "stats.json").read_text())["seeds"]["arms"] == []
    assert "## Seeds" not in (tmp_path / "r" / "results.md").read_text()


def test_several_samples_count_as_pass_rates(tmp_path: Path) -> None:
    runs = [seeded_run(tmp_path / f"deep-seed{k}", "deep", {10: [1, 0, 0, 0, 0, 0]}) for k in (1, 2)]
    rows = runs[1] / "eval" / "checkpoint-10" / "eval_all.json"
    data = json.loads(rows.read_text())
    data[1]["graded_list"] = [True, False, False, True]  # 4 samples, 2 passed: 0.5 for this problem
    rows.write_text(json.dumps(data))
    build_report(runs, tmp_path / "r")
    arm = json.loads((tmp_path / "r" / "stats.json").read_text())["seeds"]["arms"][0]
    assert arm["pass@1_per_seed"] == {
        "deep-seed1": pytest.approx(1 / 6),
        "deep-seed2": pytest.approx(1.5 / 6),
    }
