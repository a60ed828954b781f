"""Experiment files are validated whole before any work starts, with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codetune.errors import CodetuneError
from codetune.run.config import QUICKSTART, load_experiment


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def base() -> dict:
    return yaml.safe_load(QUICKSTART.read_text())


def test_quickstart_is_valid_and_is_the_default() -> None:
    exp = load_experiment(None)
    assert exp.model == "qwen2.5-coder-0.5b-instruct"
    assert [a.name for a in exp.arms] == ["deep", "diverse"]
    assert exp.bench.problems == "builtin:quickstart"


def test_shipped_full_study_is_valid() -> None:
    exp = load_experiment(Path(__file__).parents[2] / "experiments" / "deep_vs_diverse.yaml")
    assert exp.bench.filter.start == "2024-08" and exp.bench.filter.end == "2025-02"
    assert exp.train.lora.r == 16 and exp.train.effective_batch_size == 16


def test_unknown_key(tmp_path: Path) -> None:
    data = base()
    data["train"]["learning_rat"] = 1e-4
    with pytest.raises(CodetuneError, match=r"exp.yaml: train.learning_rat: unknown key"):
        load_experiment(write(tmp_path, data))


def test_a_key_given_twice_is_an_error(tmp_path: Path) -> None:
    """PyYAML would keep the second `train:` and drop the first section whole."""
    p = tmp_path / "exp.yaml"
    p.write_text(QUICKSTART.read_text() + "train:\n  max_steps: 7\n")
    lines = p.read_text().splitlines()
    with pytest.raises(
        CodetuneError, match=rf"exp.yaml: invalid YAML at line {len(lines) - 1}: key 'train' appears twice"
    ):
        load_experiment(p)
    p.write_text("name: a\nbench:\n  n: 1\n  n: 2\n")
    with pytest.raises(CodetuneError, match=r"exp.yaml: invalid YAML at line 4: key 'n' appears twice"):
        load_experiment(p)
    # a key set again after a merge key overrides the merged one: not a repeat
    from codetune.configio import read_yaml

    p.write_text("shared: &s {max_steps: 2, seed: 1}\ntrain: {<<: *s, max_steps: 3}\nother: {<<: *s}\n")
    assert read_yaml(p)["train"] == {"max_steps": 3, "seed": 1} and read_yaml(p)["other"]["max_steps"] == 2
    p.write_text("? [a, b]\n: 1\n")  # a list as a key: PyYAML's own one-line error, not a traceback
    with pytest.raises(CodetuneError, match=r"exp.yaml: invalid YAML at line 1: found unhashable key"):
        read_yaml(p)


def test_missing_arm_dataset(tmp_path: Path) -> None:
    data = base()
    del data["arms"][0]["data"]["dataset"]
    with pytest.raises(CodetuneError, match=r"exp.yaml: arms.deep.data.dataset: Field required"):
        load_experiment(write(tmp_path, data))
    del data["arms"][0]["name"]  # an entry without a name is located by its index
    with pytest.raises(CodetuneError, match=r"exp.yaml: arms.0.(name|data.dataset): Field required"):
        load_experiment(write(tmp_path, data))


def test_missing_local_dataset_file(tmp_path: Path) -> None:
    data = base()
    data["arms"][1]["data"]["dataset"] = str(tmp_path / "nope.jsonl")
    with pytest.raises(CodetuneError, match=r"arms.diverse.data.dataset: file not found"):
        load_experiment(write(tmp_path, data))


def test_bad_filter(tmp_path: Path) -> None:
    data = base()
    data["bench"]["filter"] = {"start": "2024-13"}
    with pytest.raises(CodetuneError, match=r"bench.filter.start: .*YYYY-MM"):
        load_experiment(write(tmp_path, data))


def test_bad_arm_override_is_rooted_at_the_arm(tmp_path: Path) -> None:
    data = base()
    data["arms"][0]["train"] = {"micro_batch_size": 0}
    with pytest.raises(CodetuneError, match=r"arms.deep.train: micro_batch_size"):
        load_experiment(write(tmp_path, data))


def test_cli_overrides(tmp_path: Path) -> None:
    exp = load_experiment(None, ["train.max_steps=5", f"out={tmp_path}"])
    assert exp.train.max_steps == 5 and exp.out == str(tmp_path)


def test_overrides_reach_an_arm_by_name_or_index_and_are_blamed_for_their_values() -> None:
    exp = load_experiment(None, ["arms.deep.train.learning_rate=0.001", "arms.1.data.max_length=512"])
    deep, diverse = exp.arms
    assert deep.train["learning_rate"] == 0.001 and exp.arm_train(deep).learning_rate == 0.001
    assert diverse.data.max_length == 512 and "learning_rate" not in diverse.train
    for overrides, message in (
        (
            ["arms.nope.train.max_steps=3"],
            r"override 'arms.nope.train.max_steps=3': no entry 'nope' \(names: deep, diverse\)",
        ),
        (["arms.deep=3"], r"override 'arms.deep=3': a whole entry of arms is not replaced"),
        (["train.lora=" + "[" * 2000], r"^override train.lora=...: the value is nested too deeply$"),
        (["train.lora.r.x=1"], r"^override 'train.lora.r.x=1': train.lora.r: "),  # it made r a section
        (["seeds=[1,1]"], r"^override 'seeds=\[1,1\]': seeds: must be unique, got \[1, 1\]$"),
        (["arms.diverse.name=deep"], r"^override 'arms.diverse.name=deep': arms: arm names must be unique"),
        (
            ["arms.0.data.dataset=/nope.jsonl"],
            r"^override 'arms.0.data.dataset=/nope.jsonl': arms.deep.data.dataset: file not found",
        ),
        (["arms.deep.data.dataset=/tmp.jsonl"], r"arms.deep.data.dataset: file not found: /tmp.jsonl$"),
        (["train.max_steps=3", "train.lora.r=big"], r"^override 'train.lora.r=big': train.lora.r: "),
        (["train.max_steps=true"], r"train.max_steps: expected a number, got true$"),  # pydantic would read 1
        (["bench.k=[true, 2]"], r"bench.k: expected a number, got \[true, 2\]$"),
        # an arm named or numbered: the override is blamed either way, also for the arm's merged train section
        (
            ["arms.0.train.learning_rate=abc"],
            r"^override 'arms.0.train.learning_rate=abc': arms.deep.train: learn",
        ),
        (
            ["arms.diverse.data.valid_fraction=x"],
            r"^override 'arms.diverse.data.valid_fraction=x': arms.diverse.data",
        ),
    ):
        with pytest.raises(CodetuneError, match=message):
            load_experiment(None, overrides)


def test_duplicate_arm_names(tmp_path: Path) -> None:
    data = base()
    data["arms"][1]["name"] = "deep"
    with pytest.raises(CodetuneError, match="arm names must be unique"):
        load_experiment(write(tmp_path, data))


def test_seeds_train_every_arm_once_per_seed(tmp_path: Path) -> None:
    data = base() | {"seeds": [1, 7]}
    data["arms"][1]["train"] = {"learning_rate": 5e-4}
    exp = load_experiment(write(tmp_path, data))
    runs = exp.runs()
    assert [r.name for r in runs] == ["deep-seed1", "deep-seed7", "diverse-seed1", "diverse-seed7"]
    assert [exp.arm_train(r).seed for r in runs] == [1, 7, 1, 7]
    assert exp.arm_train(runs[3]).learning_rate == 5e-4 and exp.arm_train(runs[0]).learning_rate != 5e-4
    assert [exp.group_of(r.name) for r in runs] == ["deep", "deep", "diverse", "diverse"]
    assert [a.name for a in load_experiment(None).runs()] == ["deep", "diverse"]


def test_duplicate_seeds(tmp_path: Path) -> None:
    with pytest.raises(CodetuneError, match=r"exp.yaml: seeds: must be unique"):
        load_experiment(write(tmp_path, base() | {"seeds": [1, 1]}))


def test_a_text_setting_takes_an_override_as_written() -> None:
    """YAML reads `123`, `2024-01-01` and `Problem: {input}` as a number, a date and a mapping; a setting that wants
    text gets the override's text instead of an error."""
    exp = load_experiment(
        None, ["name=2024-01-01", "arms.deep.data.prompt_template=Problem: {input}", "bench.system_prompt=42"]
    )
    assert exp.name == "2024-01-01" and exp.bench.system_prompt == "42"
    assert exp.arms[0].data.prompt_template == "Problem: {input}"
    with pytest.raises(CodetuneError, match=r"^override 'train.max_steps=abc': train.max_steps"):
        load_experiment(None, ["name=123", "train.max_steps=abc"])  # a number setting still wants a number


def test_a_total_estimate_covers_every_stage_left_or_is_unknown() -> None:
    from codetune.run.plan import Plan, Stage

    plan = Plan([Stage("prepare", "prepare", estimate_s=5.0), Stage("train:a", "train", "a"),
                 Stage("report", "report", estimate_s=10.0)], "cpu")  # fmt: skip
    assert plan.total_estimate_s() is None  # not 15 s: training has no estimate
    assert plan.total_estimate_s({"train:a"}) == 15.0
    assert plan.total_estimate_s({"prepare", "train:a"}) == 10.0


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_max_steps_is_all_epochs_or_a_count_never_silently_either(steps: str, tmp_path) -> None:
    from codetune.run.config import load_experiment

    with pytest.raises(
        CodetuneError,
        match=rf"train.max_steps: must be -1 \(all epochs\) or a number of steps >= 1, got {steps}",
    ):
        load_experiment(None, [f"train.max_steps={steps}", f"out={tmp_path}"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model=qwen-9000", "override 'model=qwen-9000': model: unknown model 'qwen-9000'"),
        (
            "arms.deep.data.dataset=builtin:divers",
            "arms.deep.data.dataset: builtin:divers: unknown sample set",
        ),
        ("bench.problems=/no/such.jsonl", "bench.problems: /no/such.jsonl: file not found"),
    ],
)
def test_a_bad_model_dataset_or_problem_file_names_its_key(override: str, message: str, tmp_path) -> None:
    from codetune.run.config import load_experiment

    with pytest.raises(CodetuneError) as e:
        load_experiment(None, [override, f"out={tmp_path}"])
    assert str(e.value).startswith(f"override {override!r}: ") and message in str(e.value)
