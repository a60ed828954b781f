"""LoRA SFT of one arm on TRL's SFTTrainer: run folder, loss log, checkpoints and resume."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from codetune.errors import CodetuneError
from codetune.files import append_jsonl, atomic_write_json, atomic_write_text
from codetune.train.checkpoints import STAGING, atomic_checkpoints, checkpoint_step, publish
from codetune.train.config import TrainConfig, kernel_conflict
from codetune.train.run_folder import (
    SPLITS,
    TrainResult,
    check_resumable,
    device_name,
    finished,
    forget_start,
    open_folder,
    peak_memory_gib,
    run_config,
    run_readme,
    versions,
)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def grad_accumulation(cfg: TrainConfig, world: int | None = None, source: str = "config") -> int:
    """Optimizer-step batch = micro batch x processes x accumulation; it must divide exactly."""
    world = world or world_size()
    per_pass = cfg.micro_batch_size * world
    if cfg.effective_batch_size % per_pass:
        raise CodetuneError(
            f"{source}: train.effective_batch_size: {cfg.effective_batch_size} is not a multiple of "
            f"micro_batch_size ({cfg.micro_batch_size}) x processes ({world}); change one of them"
        )
    return cfg.effective_batch_size // per_pass


def check_config(cfg: TrainConfig, source: str = "config") -> None:
    """Raise CodetuneError for settings that pydantic cannot judge alone (run before any heavy work)."""
    from transformers.trainer_utils import SchedulerType

    grad_accumulation(cfg, source=source)
    valid = [s.value for s in SchedulerType]
    if cfg.lr_scheduler not in valid:
        raise CodetuneError(
            f"{source}: train.lr_scheduler: unknown scheduler {cfg.lr_scheduler!r}; one of {', '.join(valid)}"
        )
    if conflict := kernel_conflict(cfg):
        raise CodetuneError(f"{source}: {conflict}")
    if cfg.liger_kernel == "on" and not _installed("liger_kernel"):
        raise CodetuneError(
            f"{source}: train.liger_kernel: 'on' needs the liger-kernel package (codetune[gpu])"
        )


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _report_to(cfg: TrainConfig) -> list[str] | str:
    from transformers.integrations import get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    wanted = [r for r in cfg.report_to if r != "none"]
    missing = [r for r in wanted if r not in available and r != "all"]
    if missing and is_main_process():
        print(
            f"warning: train.report_to: {', '.join(missing)} not installed; not reporting there",
            file=sys.stderr,
        )
    kept = [r for r in wanted if r not in missing]
    return kept or "none"


def _eval_sets(splits: dict[str, Any], cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    for name in ("train", "valid"):
        if name not in splits or len(splits[name]) == 0:
            raise CodetuneError(
                f"data: the {name!r} split is missing or empty; training needs train and valid rows"
            )
    sets = {}
    for name in ("val", "test"):
        ds = splits.get(SPLITS[name])
        if ds is None or len(ds) == 0:
            continue
        if cfg.eval_max_examples is not None and len(ds) > cfg.eval_max_examples:
            ds = ds.select(range(cfg.eval_max_examples))
        sets[name] = ds
    return splits["train"], sets


def _dtype(cfg: TrainConfig, device: str) -> Any:
    import torch

    from codetune.models.load import default_dtype

    if cfg.dtype == "auto":
        return default_dtype(device)
    return getattr(torch, cfg.dtype)


def _slim_tokenizer(tokenizer: Any) -> None:
    """Drop the construction-time vocab/merges copies some transformers 5 tokenizers keep beside the backend one.

    datasets hashes the tokenizer on every TRL `map` (4 per split); these Python copies make that take seconds.
    """
    if getattr(tokenizer, "_tokenizer", None) is not None:
        for name in ("_vocab", "_merges"):
            tokenizer.__dict__.pop(name, None)


def _check_prepared(trainer: Any, cfg: TrainConfig) -> None:
    """TRL drops the examples whose completion `max_length` truncates away entirely; a split left empty is the
    user's setting, not a crash inside the Trainer."""
    sets = {"train": trainer.train_dataset, **(trainer.eval_dataset or {})}
    for name, dataset in sets.items():
        if dataset is not None and len(dataset) == 0:
            raise CodetuneError(
                f"train.max_length: {cfg.max_length} tokens leave no example of the {SPLITS.get(name, name)} split "
                "any completion to learn from (their prompts fill it); raise max_length"
            )


def _best_step(state: Any, records: list[dict]) -> int | None:
    if state.best_global_step:
        return state.best_global_step
    scored = [r for r in records if r.get("val_loss") is not None]
    return min(scored, key=lambda r: r["val_loss"])["step"] if scored else None


def train(
    model_spec: str,
    splits: dict[str, Any],
    cfg: TrainConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    extra_config: dict | None = None,
    data_fingerprints: dict | None = None,
    progress: bool = True,
) -> TrainResult:
    """LoRA-fine-tune `model_spec` on splits["train"], logging val/test loss; see docs/ARCHITECTURE.md (train)."""
    out_dir = Path(out_dir)
    main = is_main_process()
    check_config(cfg)
    accumulation = grad_accumulation(cfg)
    train_ds, eval_sets = _eval_sets(splits, cfg)
    wanted = run_config(model_spec, cfg, extra_config)

    if resume and (done := finished(out_dir)) is not None:
        check_resumable(out_dir, wanted)  # other settings would not be trained: say so instead of "done"
        return done
    checkpoint, records, info = open_folder(out_dir, wanted, resume=resume, main=main)

    import torch
    from peft import LoraConfig
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from codetune.models import load_model
    from codetune.models.load import model_revision, pinned_weights
    from codetune.train.callbacks import LossLogCallback, RichProgressCallback, ValEarlyStopping
    from codetune.train.speed import after_lora, configure_fast_path, training_context

    cuda = torch.cuda.is_available()
    dtype = _dtype(cfg, "cuda" if cuda else "cpu")
    # Loaded on the CPU: the Trainer moves it to this process's device (cuda:LOCAL_RANK under DDP).
    weights = pinned_weights(model_spec, info.get("base_model_revision"))
    model, tokenizer = load_model(weights, dtype=dtype, device="cpu", quiet=not main)
    revision = model_revision(weights)
    if info.get("base_model_revision") not in (None, revision):
        raise CodetuneError(
            f"{out_dir / 'run.json'}: base_model_revision: this run started from {model_spec} at "
            f"{info['base_model_revision']}, which now loads {revision}; train on other weights in a new --out"
        )
    _slim_tokenizer(tokenizer)
    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else "cpu"
    # Padding-free batches, Liger, checkpointing and the micro-batch that fits: decided (and patched in) by speed.py.
    fast_path = configure_fast_path(model, cfg, device, world_size=world_size())
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        info = {
            **info,
            "status": "running",
            "base_model": model_spec,
            "base_model_revision": revision,
            "seed": cfg.seed,
            "versions": versions(),
            "data_fingerprints": data_fingerprints or {},
            "dataset_sizes": {SPLITS.get(k, k): len(d) for k, d in {"train": train_ds, **eval_sets}.items()},
            "device": device_name(),
            "world_size": world_size(),
            "dtype": str(dtype).removeprefix("torch."),
            "fast_path": getattr(model, "codetune_fast_path", {}),
            "started": info.get("started", time.time()),
            "final_step": None,
        }
        if resume:
            info["resumed_from"] = [
                *info.get("resumed_from", []),
                checkpoint_step(checkpoint) if checkpoint else 0,
            ]
            append_jsonl(
                out_dir / "metrics.jsonl", {"event": "resume", "from_step": info["resumed_from"][-1]}
            )
            atomic_write_json(out_dir / "log.json", records)
        # run.json first: a kill between the two leaves a folder that reads as a run
        atomic_write_json(out_dir / "run.json", info)
        atomic_write_text(
            out_dir / "config.yaml", yaml.safe_dump(wanted, sort_keys=False, allow_unicode=True)
        )

    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.micro_batch_size,
        per_device_eval_batch_size=fast_path.get("per_device_train_batch_size", cfg.micro_batch_size),
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_length=cfg.max_length,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        save_only_model=False,
        metric_for_best_model="eval_val_loss",
        greater_is_better=False,
        restore_callback_states_from_checkpoint=cfg.early_stopping_patience is not None,
        seed=cfg.seed,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        include_num_input_tokens_seen="non_padding",
        report_to=_report_to(cfg),
        disable_tqdm=True,
        use_cpu=not cuda,  # without it, a CPU-only torchrun/accelerate launch trains each process alone
    )
    args = SFTConfig(**{**kwargs, **fast_path})
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        use_rslora=cfg.lora.use_rslora,
        use_dora=cfg.lora.use_dora,
        task_type="CAUSAL_LM",
    )
    log_cb = LossLogCallback(out_dir, list(eval_sets), records)
    callbacks: list[Any] = [log_cb]
    if progress:
        callbacks.append(RichProgressCallback())
    if cfg.early_stopping_patience is not None:
        callbacks.append(ValEarlyStopping(early_stopping_patience=cfg.early_stopping_patience))

    trainer = atomic_checkpoints(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_sets,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=callbacks,
    )
    try:
        _check_prepared(trainer, cfg)
    except CodetuneError:
        if main and not resume:
            forget_start(out_dir)  # nothing was trained: the corrected command may use the same --out
        raise
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    after_lora(trainer.model)
    with training_context(trainer.model):
        output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    staged_adapter = out_dir / STAGING / "adapter"
    trainer.save_model(str(staged_adapter))
    if main:
        publish(staged_adapter, out_dir / "adapter")

    state = trainer.state
    best = _best_step(state, log_cb.records)
    if main:
        from codetune.train.plot import plot_losses

        plot_losses(log_cb.records, out_dir / "loss.png", title=f"{model_spec} LoRA")
        info.update(
            status="complete",
            final_step=state.global_step,
            best_val_step=best,
            tokens_seen=state.num_input_tokens_seen,
            finished=time.time(),
            train_runtime=output.metrics.get("train_runtime"),
            train_tokens_per_second=log_cb.tokens_per_second,  # this session, evaluations included
            peak_memory_gib=peak_memory_gib(cuda),
            early_stopped=state.global_step < state.max_steps,
        )
        atomic_write_json(out_dir / "run.json", info)
        data = (extra_config or {}).get("data")
        readme = run_readme(
            out_dir, model_spec, cfg, data if isinstance(data, dict) else {}, state.global_step, best
        )
        atomic_write_text(out_dir / "README.md", readme)
    return TrainResult(out_dir, state.global_step, list(log_cb.records), best)
