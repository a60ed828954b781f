"""A training run's folder: what a new run needs of it, what a resumed one keeps, and the facts run.json records."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from codetune.configio import with_defaults
from codetune.errors import CodetuneError
from codetune.files import read_json
from codetune.train.checkpoints import checkpoint_step, latest_complete, list_checkpoints, remove_incomplete
from codetune.train.config import TrainConfig

SPLITS = {"train": "train", "val": "valid", "test": "test"}  # eval-set name -> splits key
VERSIONED = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "codetune")


@dataclass
class TrainResult:
    out_dir: Path
    final_step: int
    log: list[dict] = field(default_factory=list)
    best_val_step: int | None = None


def device_name() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def peak_memory_gib(cuda: bool) -> float:
    """This process's peak: allocated GPU memory on CUDA, resident memory (the whole process) on a CPU."""
    if cuda:
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # KiB on Linux


def versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_config(model_spec: str, cfg: TrainConfig, extra_config: dict | None) -> dict:
    """What config.yaml holds: enough to re-create the run with `codetune train config.yaml`."""
    return {"model": model_spec, **(extra_config or {}), "train": cfg.model_dump(mode="json")}


def check_resumable(out_dir: Path, wanted: dict) -> None:
    path = out_dir / "config.yaml"
    if not path.is_file():
        return
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "train" in saved:
        saved["train"] = with_defaults(TrainConfig, saved["train"])
    for section in ("model", "train"):
        old, new = saved.get(section), wanted.get(section)
        if isinstance(old, dict) and isinstance(new, dict):
            diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            if diff:
                k = diff[0]
                raise CodetuneError(
                    f"{path}: {section}.{k} was {old.get(k)!r}, now {new.get(k)!r}; resume with the saved config "
                    "or start a new run folder"
                )
        elif old != new:
            raise CodetuneError(f"{path}: {section} was {old!r}, now {new!r}; resume with the saved config")


def forget_start(out_dir: Path) -> None:
    """Undo what a fresh run wrote before its first step (run.json, config.yaml), and the folder if that left it empty."""
    for name in ("run.json", "config.yaml"):
        (out_dir / name).unlink(missing_ok=True)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def _has_run(out_dir: Path) -> bool:
    return (out_dir / "run.json").is_file() or bool(list_checkpoints(out_dir, complete_only=False))


def load_log(out_dir: Path) -> list[dict]:
    path = Path(out_dir) / "log.json"
    return read_json(path) if path.is_file() else []


def finished(out_dir: Path) -> TrainResult | None:
    """The result of a run that completed in `out_dir`, else None."""
    path = out_dir / "run.json"
    info = read_json(path) if path.is_file() else {}
    if info.get("status") != "complete":
        return None
    return TrainResult(out_dir, info.get("final_step", 0), load_log(out_dir), info.get("best_val_step"))


def open_folder(
    out_dir: Path, wanted: dict, *, resume: bool, main: bool
) -> tuple[Path | None, list[dict], dict]:
    """Check `out_dir` for a new run or a resumed one: (checkpoint to resume from, log records up to it, run.json).
    A resumed run's incomplete checkpoints are removed; a new run needs a new or empty folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CodetuneError(f"{out_dir}: is a file; the run folder must be a new or empty folder")
    if resume:
        info = read_json(out_dir / "run.json") if (out_dir / "run.json").is_file() else {}
        check_resumable(out_dir, wanted)
        checkpoint = latest_complete(out_dir)
        if main:
            remove_incomplete(out_dir)
        done = checkpoint_step(checkpoint) if checkpoint else 0
        records = [r for r in load_log(out_dir) if r["step"] <= done] if main else []
        return checkpoint, records, info
    if main and _has_run(out_dir):
        raise CodetuneError(
            f"{out_dir}: already holds a training run; pass --resume to continue it or choose another --out"
        )
    if main and out_dir.is_dir() and (other := next(out_dir.iterdir(), None)):
        raise CodetuneError(
            f"{out_dir}: holds files that are not a training run (e.g. {other.name}); choose a new or empty folder"
        )
    return None, [], {}


def run_readme(
    out_dir: Path, model_spec: str, cfg: TrainConfig, data: dict, final_step: int, best: int | None
) -> str:
    """The run folder's README.md (TRL writes a generic model card there, naming no base model for a local one)."""
    from codetune import __version__

    lora = cfg.lora
    lines = [
        f"# codetune training run: {out_dir.name}",
        "",
        f"LoRA fine-tuning of `{model_spec}` by codetune {__version__} on TRL's SFTTrainer.",
        "",
        *(
            [
                f"- Data: `{data['dataset']}`, answer `{data.get('response', 'output')}`, format "
                f"`{data.get('format', 'chat')}`"
            ]
            if data.get("dataset")
            else []
        ),  # fmt: skip
        f"- LoRA: r={lora.r}, alpha={lora.alpha}, dropout={lora.dropout}, on {', '.join(lora.target_modules)}",
        f"- Steps: {final_step}; lowest validation loss at step {best if best is not None else '-'}",
        "",
        "Files: `log.json` (losses at every evaluation), `metrics.jsonl` (every record TRL logged), `run.json` "
        "(versions, device, data fingerprints), `config.yaml` (train it again with `codetune train config.yaml`), "
        "`checkpoint-<step>/` (PEFT adapters), `adapter/` (the final adapter).",
        "",
        f"Grade the checkpoints and pick the best: `codetune eval --run {out_dir} --problems ...`; merge one into "
        f"the base model: `codetune export {out_dir} --out merged/`.",
        "",
    ]
    return "\n".join(lines)
