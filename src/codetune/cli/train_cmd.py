"""`codetune train CONFIG.yaml`: build the arm's splits, then LoRA-fine-tune with loss tracking and checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

TOP_LEVEL = ("model", "out", "data", "train")


def _qualify(item: str) -> str:
    """`learning_rate=2e-4` means `train.learning_rate=2e-4`; keys under model/out/data/train stay as given."""
    key = item.split("=", 1)[0].strip()
    return item if key.split(".")[0] in TOP_LEVEL or "=" not in item else f"train.{item.strip()}"


def load_run_config(
    config: Path, overrides: list[str], *, model: str | None = None, out: Path | None = None
) -> Any:
    """Read, override and validate the whole train YAML; every mistake is a one-line CodetuneError."""
    from codetune.configio import apply_overrides, read_yaml, source_of, validate
    from codetune.errors import CodetuneError
    from codetune.models.source import check_named_model
    from codetune.train.config import TrainRunConfig
    from codetune.train.trainer import check_config

    qualified = [_qualify(o) for o in overrides]
    raw = apply_overrides(read_yaml(config), qualified)
    if model:
        raw["model"] = model
    if out:
        raw["out"] = str(out)
    try:
        cfg = validate(TrainRunConfig, raw, str(config), qualified)
    except CodetuneError as e:  # blame the override as the user typed it (`micro_batch_size=3`)
        message = str(e)
        for typed, q in zip(overrides, qualified, strict=True):
            message = message.replace(f"override {q!r}", f"override {typed!r}")
        raise CodetuneError(message) from None
    if not cfg.out:
        raise CodetuneError(f"{config}: out: missing; set `out:` in the file or pass --out DIR")
    check_named_model(cfg.model, source_of("model", str(config), qualified))
    check_config(cfg.train, source=str(config))
    return cfg


def train_command(
    config: Path = typer.Argument(..., help="YAML with model, out, data and train sections."),
    override: list[str] = typer.Option(
        [], "--override", "-o", help="KEY=VALUE, e.g. train.learning_rate=2e-4 (bare keys mean train.KEY)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: `out` in the YAML)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint."),
    model: str | None = typer.Option(None, "--model", help="Base model spec (default: `model` in the YAML)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """LoRA SFT on TRL: train/validation/test loss every eval_steps, adapter checkpoints, resume."""
    cfg = load_run_config(config, override, model=model, out=out)
    from codetune.files import check_out_folder

    check_out_folder(Path(cfg.out))  # before the data and the model load
    if no_progress:
        from codetune.cli import library_bars_off

        library_bars_off()

    from codetune.data import build_splits
    from codetune.models import load_tokenizer
    from codetune.train import train
    from codetune.train.trainer import is_main_process

    splits = build_splits(cfg.data, load_tokenizer(cfg.model, quiet=not is_main_process()))
    result = train(
        cfg.model,
        splits.datasets,
        cfg.train,
        Path(cfg.out),
        resume=resume,
        extra_config={"data": cfg.data.model_dump(mode="json")},
        data_fingerprints={"data": splits.fingerprint},
        progress=not no_progress,
    )
    if is_main_process():
        from codetune.files import atomic_write_json

        # what the report's Training data section reads
        atomic_write_json(result.out_dir / "data_report.json", splits.report)
        last = result.log[-1] if result.log else {}

        def loss(name: str) -> str:
            value = last.get(name)
            return f"{value:.4f}" if isinstance(value, float) else "-"

        print(
            f"done: {result.out_dir} step {result.final_step}, val loss {loss('val_loss')}, "
            f"test loss {loss('test_loss')}, best val step {result.best_val_step}"
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
