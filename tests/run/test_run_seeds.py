"""`seeds:` trains every arm once per seed and the report sets the arms' difference against seed noise."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_run_e2e import experiment, run_to_end

from codetune.cli.train_cmd import load_run_config


def test_seeded_experiment_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "exp"
    path = experiment(tmp_path, tiny_model_dir, out)
    data = yaml.safe_load(path.read_text())
    data["seeds"] = [1, 2]
    data["train"]["max_steps"] = 2
    data["evaluate"]["every"] = 1
    path.write_text(yaml.safe_dump(data))
    stdout = run_to_end("run", str(path))
    assert "deep vs diverse (over seeds): " in stdout

    runs = ["deep-seed1", "deep-seed2", "diverse-seed1", "diverse-seed2"]
    assert sorted(p.name for p in (out / "arms").iterdir()) == runs
    configs = {r: yaml.safe_load((out / "arms" / r / "config.yaml").read_text()) for r in runs}
    assert [(c["group"], c["train"]["seed"]) for c in configs.values()] == [
        ("deep", 1),
        ("deep", 2),
        ("diverse", 1),
        ("diverse", 2),
    ]
    for r in runs:  # a run's config.yaml trains again as it is with `codetune train`
        assert load_run_config(
            out / "arms" / r / "config.yaml", [], out=tmp_path / "again"
        ).train.seed == int(r[-1])
    logs = {r: json.loads((out / "arms" / r / "log.json").read_text()) for r in runs}
    assert (
        logs["deep-seed1"][-1]["val_loss"] != logs["deep-seed2"][-1]["val_loss"]
    )  # the seed changes training

    stats = json.loads((out / "report" / "stats.json").read_text())
    arms = {g["arm"]: g for g in stats["seeds"]["arms"]}
    assert sorted(arms) == ["deep", "diverse"]
    for arm, g in arms.items():
        assert g["runs"] == [f"{arm}-seed1", f"{arm}-seed2"]
        loo = {s["run"]: s["leave_one_problem_out"]["pass@1"] for s in stats["selection"]["runs"]}
        assert g["pass@1_per_seed"] == {r: loo[r] for r in g["runs"]}
    assert [(p["a"], p["b"]) for p in stats["seeds"]["pairs"]] == [
        ("base", "deep"),
        ("base", "diverse"),
        ("deep", "diverse"),
    ]
    assert "## Seeds" in (out / "report" / "results.md").read_text()
