"""Attaching a PEFT LoRA adapter folder to a loaded base model, with a one-line error for a folder that cannot be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError

WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def check_adapter_folder(folder: str | Path) -> Path:
    """`folder` if it holds an adapter config and weights (PEFT would look for missing weights on the hub)."""
    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise CodetuneError(f"{folder}: not a PEFT adapter folder (adapter_config.json is missing)")
    if not any((folder / name).is_file() for name in WEIGHTS):
        raise CodetuneError(f"{folder}: adapter weights missing (no {' or '.join(WEIGHTS)})")
    return folder


def attach(model: Any, folder: str | Path, name: str = "default", *, into: Any = None) -> Any:
    """The PEFT model of `model` with the adapter in `folder` as `name` (added to `into`, a PEFT model, if given)."""
    from peft import PeftModel

    folder = check_adapter_folder(folder)
    try:
        if into is not None:
            into.load_adapter(str(folder), adapter_name=name)
            return into
        return PeftModel.from_pretrained(model, str(folder), adapter_name=name)
    except Exception as e:  # noqa: BLE001 - a broken file or another base model's shapes; the message says which
        # running out of memory is the machine's fault, not the folder's
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CodetuneError(
            f"{folder}: does not fit the base model, or is damaged ({type(e).__name__}: {first})"
        ) from None
