"""Training configuration: the reference study's LoRA recipe as defaults, plus codetune's speed options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from codetune.configio import StrictModel, Switch
from codetune.data.config import DataConfig

STUDY_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraConfig(StrictModel):
    """PEFT LoRA settings (the study: r=16, alpha=32, dropout 0.05 on all attention and MLP projections)."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(STUDY_TARGETS))
    use_rslora: bool = Field(
        False, description="Rank-stabilized scaling, alpha/sqrt(r) instead of alpha/r (PEFT's use_rslora)."
    )
    use_dora: bool = Field(
        False,
        description="Weight-decomposed LoRA (PEFT's use_dora): a learned magnitude per output unit. Slower to train; "
        "its checkpoints are generated one adapter at a time (PEFT cannot mix DoRA adapters in a batch) and vLLM "
        "cannot serve them (bench.backend: hf).",
    )


class TrainConfig(StrictModel):
    """How one arm is fine-tuned. Every key can be overridden with `--override key=value`."""

    epochs: float = Field(3, gt=0)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")

    micro_batch_size: int = Field(8, ge=1, description="Sequences per device per forward pass.")
    effective_batch_size: int = Field(
        16, ge=1, description="Sequences per optimizer step (sets grad accumulation)."
    )
    learning_rate: float = Field(1e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.1, ge=0)
    max_grad_norm: float = 1.0
    max_length: int = Field(1024, ge=16, description="Longer examples are truncated.")
    logging_steps: int = Field(20, ge=1)
    eval_steps: int = Field(20, ge=1, description="Validation and test loss every this many steps.")
    save_steps: int = Field(20, ge=1, description="Adapter checkpoint every this many steps.")
    save_total_limit: int | None = Field(
        None, description="None keeps every checkpoint (the sweep needs them)."
    )
    eval_max_examples: int | None = Field(None, ge=1, description="Cap the valid/test sets used for loss.")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without validation-loss improvement."
    )
    seed: int = 42
    lora: LoraConfig = Field(default_factory=LoraConfig)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float32 on CPU, bfloat16 on CUDA."
    )
    gradient_checkpointing: Switch = Field("auto", description="auto: off unless memory needs it.")
    padding_free: Switch = Field(
        "auto",
        description="Pack examples without padding, attention kept inside each example (auto: on CUDA).",
    )
    compile: Switch = Field(
        "auto",
        description="torch.compile each decoder layer, fusing LoRA's and the model's elementwise work (auto: on "
        "CUDA). Replaces Liger's kernels, which it cannot trace.",
    )
    compile_memory_budget: float = Field(
        1.0,
        gt=0,
        le=1,
        description="With compiled layers: the share of its default activations torch.compile's partitioner may keep "
        "for the backward pass; below 1 it recomputes the cheapest rest (torch's activation_memory_budget).",
    )
    cuda_graphs: bool = Field(
        False,
        description="With compiled layers and padding_free: replay each layer's kernels as CUDA graphs (torch.compile's "
        "reduce-overhead mode), the batch's token row filled up to a multiple of 1,024 so that one graph per size is "
        "recorded. Off until timed on a GPU (benchmarks/RESULTS.md, path c_graphs).",
    )
    liger_kernel: Switch = Field(
        "auto",
        description="Liger's fused kernels when liger-kernel is installed and layers are not compiled.",
    )
    lean_lora: Switch = Field(
        "auto",
        description="Keep less for LoRA's backward pass: dropout masks redrawn from a seed, the MLP's down-projection "
        "input recomputed; same maths as PEFT (auto: on).",
    )
    report_to: list[str] = Field(
        default_factory=list, description="tensorboard, wandb, mlflow ... (installed ones)."
    )

    @field_validator("effective_batch_size")
    @classmethod
    def _batches_divide(cls, v: int, info: ValidationInfo) -> int:
        micro = info.data.get("micro_batch_size")  # validated before it (declared first)
        if isinstance(micro, int) and v % micro:
            raise ValueError(f"{v} is not a multiple of micro_batch_size ({micro}); change one of them")
        return v

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError(f"must be -1 (all epochs) or a number of steps >= 1, got {v}")
        return v


class TrainRunConfig(StrictModel):
    """The YAML read by `codetune train`: the base model, the run folder, the data and the training recipe."""

    model: str = Field(
        ..., description="Base model: catalog name, .gguf file, HF folder or hub id (owner/name[@revision])."
    )
    out: str | None = Field(
        None, description="Run folder (checkpoints, logs, final adapter); --out overrides."
    )
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    # What `codetune run` adds to a run's config.yaml, so that file can be trained again as it is.
    arm: str | None = Field(None, description="The run's name in its experiment (informational).")
    group: str | None = Field(None, description="With `seeds:`, the arm the run belongs to (informational).")


def kernel_conflict(cfg: TrainConfig) -> str | None:
    """Why `cfg`'s kernel switches cannot all hold (None when they can)."""
    if cfg.compile == "on" and cfg.liger_kernel == "on":
        return (
            "train.compile and train.liger_kernel are both 'on' and cannot be combined (torch.compile cannot trace "
            "Liger's fused norms); set one of them to auto or off"
        )
    return None
