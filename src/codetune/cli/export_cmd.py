"""`codetune export`: merge a run's chosen LoRA checkpoint (or any adapter) into its base model; optionally push it."""

from __future__ import annotations

from pathlib import Path

import typer


def export_command(
    source: Path = typer.Argument(
        ...,
        help="Training run folder (arms/<arm>/ of `codetune run`, or a `codetune train` output) or adapter folder.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder to write the merged model into (a normal HF model folder)."
    ),
    checkpoint: str | None = typer.Option(
        None,
        "--checkpoint",
        help="With a run folder: best (the eval sweep's pick; the default), last, lowest-val, a step number or a "
        "label of the sweep (checkpoint-20, final).",
    ),
    model: str | None = typer.Option(
        None, "--model", help="Base model (default: the `model` of the run's config.yaml)."
    ),
    dtype: str = typer.Option("bfloat16", "--dtype", help="Saved weights: bfloat16, float16 or float32."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty --out folder."),
    push_to_hub: str | None = typer.Option(
        None, "--push-to-hub", help="Hub repo id (user/name) to upload the merged model to."
    ),
    private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repo as private."),
) -> None:
    """Merge LoRA into the base model and save a standalone model folder with a model card (as LLaMA-Factory's
    export). The merged model gives the adapter model's logits (checked on a probe text before saving); load it with
    `AutoModelForCausalLM.from_pretrained(OUT)` or evaluate it with `codetune eval --model OUT`."""
    from rich.console import Console

    from codetune.errors import CodetuneError
    from codetune.hub import push_folder
    from codetune.models.export import DTYPES, adapter_settings, check_destination, merge_adapter
    from codetune.models.source import resolve
    from codetune.run.export import choose, model_card, run_settings

    # everything that can be checked before the merge (a minute or more on a CPU) is checked first
    if dtype not in DTYPES:
        raise CodetuneError(f"--dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    if private and not push_to_hub:
        raise CodetuneError("--private: only means something with --push-to-hub")
    if push_to_hub:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(push_to_hub)
        except HFValidationError as e:
            raise CodetuneError(
                f"--push-to-hub {push_to_hub!r}: not a hub repo id ({str(e).splitlines()[0]})"
            ) from None
    if (source / "adapter_config.json").is_file():
        if checkpoint is not None:
            raise CodetuneError(
                f"--checkpoint {checkpoint}: only applies to a run folder; {source} is one adapter folder"
            )
        adapter, choice = source, None
        run_dir = source.parent if (source.parent / "config.yaml").is_file() else None
    elif source.is_dir():
        choice = choose(source, checkpoint or "best")
        adapter, run_dir = choice.adapter, source
    else:
        raise CodetuneError(f"{source}: not a run folder or an adapter folder")
    check_destination(out, force=force, sources=(source, adapter, run_dir))
    settings = run_settings(run_dir)
    base = model or settings.get("model")
    if not isinstance(base, str) or not base:
        raise CodetuneError(f"--model: needed, since {source} has no config.yaml naming its base model")
    resolve(base)  # an unknown model fails here, not after the merge's first steps
    card = model_card(out.name, base, adapter, adapter_settings(adapter), settings, choice, dtype)
    provenance = {
        "base_model": base,
        "adapter": str(adapter.resolve()),
        "run": str(run_dir.resolve()) if run_dir else None,
        "checkpoint": choice.label if choice else adapter.name,
        "step": choice.step if choice else None,
        "chosen_by": choice.rule if choice else "the adapter folder given",
        "benchmark": choice.benchmark if choice else None,
    }
    console = Console(stderr=True)
    console.print(f"merging {adapter} into {base} ...")
    result = merge_adapter(base, adapter, out, dtype=dtype, card=card, provenance=provenance, force=force)
    console.print(
        f"wrote {result.folder} ({result.parameters:,} parameters, {result.dtype}; merge check: max logit "
        f"difference {result.merge_max_abs_diff:.2e})"
    )
    if push_to_hub:
        console.print(f"pushed to {push_folder(result.folder, push_to_hub, private=private)}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
