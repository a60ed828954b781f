"""`decontaminate`: an experiment's arms lose the rows that overlap the problems it grades on; off, they are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetune.bench.problems import load_problems
from codetune.run.config import load_experiment
from codetune.run.runner import ExperimentRunner


@pytest.mark.parametrize("decontaminate", [False, True])
def test_arms_overlapping_the_benchmark(tiny_model_dir: Path, tmp_path: Path, decontaminate: bool) -> None:
    problem = load_problems("builtin:quickstart", None)[0]
    rows = [{"input": f"Print {k} times {k}, then stop.", "output": f"print({k * k})"} for k in range(8)]
    rows.append({"input": "Before you start: " + problem.question_content, "output": "print(1)"})
    path = tmp_path / "arm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    overrides = [
        f"model={tiny_model_dir}",
        f"out={tmp_path / 'exp'}",
        f"arms=[{{name: a, data: {{dataset: {path}, columns: {{split: null}}, valid_fraction: 0, test_fraction: 0}}}}]",
        "bench.problems=builtin:quickstart",
        f"decontaminate={str(decontaminate).lower()}",
    ]
    splits = ExperimentRunner(load_experiment(None, overrides)).splits("a")
    overlap = splits.report["benchmark_overlap"]
    assert (
        overlap["question_ids"] == [problem.question_id] and overlap["problems"] == 4
    )  # the graded ones (filter limit 4)
    assert overlap["dropped"] == (1 if decontaminate else 0)
    assert overlap["train_rows"] == (0 if decontaminate else 1)
    assert len(splits.datasets["train"]) == (8 if decontaminate else 9)
