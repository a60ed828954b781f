"""LoRA adapters for generation, attached for one call and routed per batch.

Eager generation attaches every adapter under its own name, so a batch may mix rows of several adapters (PEFT routes
each row through its own). Compiled generation cannot do that: the compiled graph keeps the routing of the batch it was
traced on, and a batch with another mix gets wrong answers. There each batch holds one adapter's rows, and adapters
with the same configuration share one *slot*: switching copies the next adapter's weights into the slot's parameters
in place, so the compiled graph stays valid and nothing is recompiled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError
from codetune.files import read_json
from codetune.models.adapter import attach, check_adapter_folder

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch
# adapter_config.json keys that do not change what a loaded adapter computes at inference
_INFERENCE_NEUTRAL = {
    "base_model_name_or_path",
    "revision",
    "inference_mode",
    "lora_dropout",
    "peft_version",
    "auto_mapping",
    "init_lora_weights",
}

# A batch's adapters (one per row; None = the base model) -> the context to generate in + extra generate kwargs
Route = Callable[[Sequence[Path | None]], tuple[AbstractContextManager[Any], dict[str, Any]]]


def _check_folders(adapters: Sequence[Path]) -> None:
    for a in adapters:
        check_adapter_folder(a)


def signature(folder: Path) -> str:
    """What an adapter computes with, apart from its weights: adapters with equal signatures can share a slot."""
    config = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf-8"))
    kept = {
        k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v
        for k, v in config.items()
        if k not in _INFERENCE_NEUTRAL
    }
    return json.dumps(kept, sort_keys=True, default=str)


def is_dora(folder: Path) -> bool:
    """Whether the adapter in `folder` is DoRA, which PEFT cannot mix with other adapters in one batch."""
    config = read_json(check_adapter_folder(folder) / "adapter_config.json")
    return isinstance(config, dict) and bool(config.get("use_dora"))


@contextmanager
def adapters_attached(model: Any, adapters: Sequence[Path], *, mixed: bool) -> Iterator[tuple[Any, Route]]:
    """Attach the adapter folders to `model` for the duration (the base model is restored, unmerged, after) and yield
    the model to call and a `Route` for each batch. `mixed`: every adapter under its own name, batches may mix them;
    else one slot per adapter signature, one adapter per batch."""
    if not adapters:
        yield model, lambda _rows: (nullcontext(), {})
        return
    _check_folders(adapters)

    if mixed:
        names = {Path(a): f"adapter{i}" for i, a in enumerate(adapters)}
    else:
        sigs = {Path(a): signature(a) for a in adapters}
        slot_of = {sig: f"slot{i}" for i, sig in enumerate(dict.fromkeys(sigs.values()))}
        names = {a: slot_of[sig] for a, sig in sigs.items()}
    first: dict[str, Path] = {}
    for folder, name in names.items():
        first.setdefault(name, folder)
    (name0, folder0), *rest = first.items()
    peft_model = attach(model, folder0, name0)
    try:
        for name, folder in rest:
            attach(model, folder, name, into=peft_model)
        peft_model.eval()
        yield peft_model, _mixed_route(peft_model, names) if mixed else _slot_route(peft_model, names, first)
    finally:
        peft_model.unload()


def _mixed_route(model: Any, names: dict[Path, str]) -> Route:
    def route(rows: Sequence[Path | None]) -> tuple[AbstractContextManager[Any], dict[str, Any]]:
        which = [BASE if r is None else names[Path(r)] for r in rows]
        if len(set(which)) > 1:
            return nullcontext(), {"adapter_names": which}
        if which[0] == BASE:
            return model.disable_adapter(), {}
        model.set_adapter(which[0], inference_mode=True)
        return nullcontext(), {}

    return route


def _slot_route(model: Any, names: dict[Path, str], loaded: dict[str, Path]) -> Route:
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    device = next(model.parameters()).device

    def route(rows: Sequence[Path | None]) -> tuple[AbstractContextManager[Any], dict[str, Any]]:
        if len(set(rows)) > 1:
            raise ValueError("a compiled generation batch holds one adapter's rows")
        if rows[0] is None:
            return model.disable_adapter(), {}
        folder = Path(rows[0])
        slot = names[folder]
        if loaded[slot] != folder:
            weights = load_peft_weights(str(folder), device=str(device))
            result: Any = set_peft_model_state_dict(model, weights, adapter_name=slot)
            missing = [k for k in result.missing_keys if f".{slot}." in k]
            if result.unexpected_keys or missing:
                raise CodetuneError(f"{folder}: adapter_model weights do not match its adapter_config.json")
            loaded[slot] = folder
        model.set_adapter(slot, inference_mode=True)
        return nullcontext(), {}

    return route
