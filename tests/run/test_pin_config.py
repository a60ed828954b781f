"""An experiment folder is pinned to its settings; one pinned by an older codetune still matches its defaults."""

from __future__ import annotations

import pytest
import yaml

from codetune.errors import CodetuneError
from codetune.run.config import load_experiment
from codetune.run.runner import ExperimentRunner


def _runner(tmp_path, *overrides: str) -> ExperimentRunner:
    return ExperimentRunner(load_experiment(None, [f"out={tmp_path / 'exp'}", *overrides]))


def _pin_as_older_version(runner: ExperimentRunner) -> None:
    old = runner.exp.model_dump(mode="json")
    del (
        old["train"]["compile_memory_budget"],
        old["bench"]["decode_loop"],
        old["train"]["cuda_graphs"],
    )  # settings added in sessions 6, 7 and 16
    runner.out.mkdir(parents=True)
    (runner.out / "experiment.yaml").write_text(yaml.safe_dump(old, sort_keys=False))


def test_folder_pinned_by_an_older_version_accepts_the_same_settings(tmp_path):
    runner = _runner(tmp_path)
    _pin_as_older_version(runner)
    runner._pin_config()
    _runner(tmp_path)._pin_config()


@pytest.mark.parametrize("override", ["train.compile_memory_budget=0.5", "train.learning_rate=0.5"])
def test_other_settings_are_refused(tmp_path, override):
    _pin_as_older_version(_runner(tmp_path))
    with pytest.raises(CodetuneError, match="other settings"):
        _runner(tmp_path, override)._pin_config()


def test_the_refusal_names_the_changed_settings(tmp_path):
    _pin_as_older_version(_runner(tmp_path))
    with pytest.raises(CodetuneError, match=r"other settings \(train.learning_rate, bench.n\)"):
        _runner(tmp_path, "train.learning_rate=0.5", "bench.n=3")._pin_config()


def test_the_refusal_names_a_changed_arm_setting_as_o_spells_it(tmp_path):
    _pin_as_older_version(_runner(tmp_path, "arms.deep.train.learning_rate=1e-4"))
    with pytest.raises(CodetuneError, match=r"other settings \(arms.deep.train.learning_rate\)"):
        _runner(tmp_path, "arms.deep.train.learning_rate=2e-4")._pin_config()
    with pytest.raises(
        CodetuneError, match=r"other settings \(arms.deep.train.learning_rate, arms.diverse.data.seed\)"
    ):
        _runner(tmp_path, "arms.diverse.data.seed=7")._pin_config()


def test_the_decoding_loop_can_change_between_runs(tmp_path):
    """It changes how fast answers come, not which (tests/bench/test_fast_generate.py), and its default changed."""
    _pin_as_older_version(_runner(tmp_path, "bench.decode_loop=false"))
    _runner(tmp_path)._pin_config()
    _runner(tmp_path, "bench.decode_loop=false")._pin_config()


def test_dry_run_refuses_what_the_run_would_refuse(tmp_path):
    """--dry-run printed a full plan for a folder the run then refused (other settings) or crashed on (a file)."""
    import subprocess
    import sys

    _pin_as_older_version(_runner(tmp_path))
    taken = tmp_path / "taken"
    taken.write_text("x\n")
    for args, message in (
        (["-o", "train.learning_rate=0.5", "--out", str(tmp_path / "exp")], "other settings"),
        (["--out", str(taken)], "is a file; the experiment folder"),
        (
            ["-o", f"report.study_logs=[{taken}]", "--out", str(tmp_path / "new")],
            f"report.study_logs: {taken}: invalid JSON",
        ),  # read by the report stage, after the training: read up front
    ):
        r = subprocess.run(
            [sys.executable, "-m", "codetune.cli", "run", "--dry-run", *args], capture_output=True, text=True
        )
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert "total estimate" not in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "run", "--dry-run", "--out", str(tmp_path / "exp")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "total estimate" in r.stdout, r.stderr[-2000:]
