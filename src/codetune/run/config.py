"""The experiment file: one base model, competing arms (datasets), shared training, one benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from codetune.bench.config import BenchConfig
from codetune.configio import StrictModel, format_validation_error, load_config, source_of
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError
from codetune.train.config import TrainConfig

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"


class Arm(StrictModel):
    """One competitor: a name, its data, and training keys that differ from the shared ones."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Folder-safe arm name.")
    data: DataConfig
    train: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the shared `train` section."
    )


class EvaluateConfig(StrictModel):
    """Which models the benchmark runs on."""

    base: bool = Field(True, description="Evaluate the base model too (the baseline the study lacked).")
    checkpoints: Literal["all", "final", "none"] = Field(
        "all", description="Checkpoints of each arm to evaluate."
    )
    every: int = Field(
        1, ge=1, description="With checkpoints=all: every K-th checkpoint (the final one always)."
    )


class ReportConfig(StrictModel):
    title: str | None = None
    study_logs: list[str] = Field(default_factory=list, description="Reference loss logs drawn dashed.")


class Experiment(StrictModel):
    """A whole study from one file. `codetune run FILE` trains each arm, evaluates, picks the best checkpoints, reports."""

    name: str = "experiment"
    model: str = Field(
        "qwen2.5-coder-0.5b-instruct",
        description="Catalog name, .gguf file, HF folder or hub id (owner/name[@revision]).",
    )
    out: str = Field("runs/experiment", description="Experiment folder (relative to the current directory).")
    train: TrainConfig = Field(default_factory=TrainConfig)
    arms: list[Arm] = Field(..., min_length=1)
    seeds: list[int] = Field(
        default_factory=list,
        description="Train every arm once per training seed (runs `<arm>-seed<k>`); the report then separates the "
        "data's effect from seed-to-seed noise. Empty: each arm once, with `train.seed`.",
    )
    bench: BenchConfig = Field(default_factory=BenchConfig)
    decontaminate: bool = Field(
        False,
        description="Leave out of every arm's data the rows whose statement overlaps a benchmark problem (word "
        "n-grams, as in each arm's data.contamination). Off: such rows are trained on and the report warns.",
    )
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("arms")
    @classmethod
    def _arm_names_unique(cls, arms: list[Arm]) -> list[Arm]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        return arms

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"must be unique, got {seeds}")
        return seeds

    @model_validator(mode="after")
    def _arms_valid(self) -> Experiment:
        for arm in self.runs():
            self.arm_train(arm)
        return self

    def runs(self) -> list[Arm]:
        """The training runs: each arm, or each arm once per seed (named `<arm>-seed<k>`, `train.seed` set)."""
        if not self.seeds:
            return list(self.arms)
        return [
            Arm(name=f"{a.name}-seed{s}", data=a.data, train={**a.train, "seed": s})
            for a in self.arms
            for s in self.seeds
        ]

    def group_of(self, run: str) -> str:
        """The arm a run belongs to."""
        if not self.seeds:
            return run
        return next(a.name for a in self.arms for s in self.seeds if f"{a.name}-seed{s}" == run)

    def arm_train(self, arm: Arm) -> TrainConfig:
        merged = _deep_merge(self.train.model_dump(), arm.train)
        try:
            return TrainConfig.model_validate(merged)
        except Exception as e:  # pydantic ValidationError: re-rooted under the arm
            from pydantic import ValidationError

            if isinstance(e, ValidationError):
                raise ValueError(format_validation_error(f"arms.{arm.name}.train", e)) from None
            raise


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_experiment(path: str | Path | None, overrides: list[str] | None = None) -> Experiment:
    """Read and validate an experiment file; with no path, the embedded quickstart."""
    path = Path(path) if path else QUICKSTART
    exp = load_config(Experiment, path, overrides)
    arms = [{"name": arm.name} for arm in exp.arms]  # how overrides name an arm: by name or index
    for arm in exp.arms:
        key = f"arms.{arm.name}.data.dataset"
        _check_dataset(arm, source_of(key, str(path), overrides, {"arms": arms}))
    _check_study_logs(exp, source_of("report.study_logs", str(path), overrides))
    _check_named(exp, str(path), overrides)
    return exp


def _check_named(exp: Experiment, path: str, overrides: list[str] | None) -> None:
    """The model and a local problem file, named by the key that gives them (their own errors name neither)."""
    from codetune.bench.problems import is_hub_source
    from codetune.models.source import check_named_model

    check_named_model(exp.model, source_of("model", path, overrides))
    problems = exp.bench.problems
    local = not problems.startswith("builtin:") and not is_hub_source(problems)
    if local and not Path(problems).expanduser().is_file():
        raise CodetuneError(
            f"{source_of('bench.problems', path, overrides)}: bench.problems: {problems}: file not found"
        )


def _check_study_logs(exp: Experiment, source: str) -> None:
    """The report reads them at the end, after hours of training: read them now."""
    from codetune.report.inputs import read_log

    for log in exp.report.study_logs:
        try:
            read_log(log)
        except CodetuneError as e:
            raise CodetuneError(f"{source}: report.study_logs: {e}") from None


def _check_dataset(arm: Arm, source: str) -> None:
    from codetune.data.load import builtin_path

    ds = arm.data.dataset
    if ds.startswith("builtin:"):
        try:
            builtin_path(ds.split(":", 1)[1])
        except CodetuneError as e:
            raise CodetuneError(f"{source}: arms.{arm.name}.data.dataset: {e}") from None
    local = ds.lower().endswith((".jsonl", ".json", ".parquet"))
    if local and not Path(ds).expanduser().is_file():
        what = "is a folder, not a file" if Path(ds).expanduser().is_dir() else "file not found"
        raise CodetuneError(f"{source}: arms.{arm.name}.data.dataset: {what}: {ds}")
