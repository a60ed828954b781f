"""Merge a LoRA adapter into its base model and save one standalone HF model folder (LLaMA-Factory's `export`).

The base is loaded in float32, the adapter merged with PEFT's `merge_and_unload`, and the merge checked: the merged
model's logits on a probe text must equal the adapter model's. The folder is written beside its destination and
renamed into place, so a killed export leaves no half-written model where a finished one is expected.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError
from codetune.files import atomic_write_json, atomic_write_text, check_out_folder, read_json

DTYPES = ("bfloat16", "float16", "float32")
PROBE = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n"
MERGE_TOLERANCE = 1e-3  # relative to the largest logit; float32 merging differs by rounding only
PROVENANCE = "codetune-export.json"


@dataclass(frozen=True)
class Exported:
    folder: Path
    dtype: str
    parameters: int
    merge_max_abs_diff: float  # |adapter model's logits - merged model's logits| on PROBE, in float32


def check_destination(out: Path, *, force: bool, sources: tuple[Path | None, ...] = ()) -> None:
    """`out` may be replaced (with `force`) only if it holds none of `sources` (the adapter, its run folder)."""
    check_out_folder(out)
    target = out.expanduser().resolve()
    for source in sources:
        if source is not None and target in (s := source.expanduser().resolve(), *s.parents):
            raise CodetuneError(f"--out {out}: holds {source}, which this export reads; give another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CodetuneError(f"{out}: folder is not empty; pass --force to replace it")


def adapter_settings(adapter: Path) -> dict[str, Any]:
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise CodetuneError(f"{adapter}: not a PEFT adapter folder (adapter_config.json is missing)")
    settings = read_json(path)
    if not isinstance(settings, dict):
        raise CodetuneError(f"{path}: expected a JSON object")
    return settings


def merge_adapter(
    model_spec: str,
    adapter: Path,
    out: Path,
    *,
    dtype: str = "bfloat16",
    card: str = "",
    provenance: dict[str, Any] | None = None,
    force: bool = False,
    device: str | None = None,
) -> Exported:
    """Write `out/`: config, safetensors weights, tokenizer, generation config, README.md (`card`) and
    codetune-export.json (`provenance` + the merge check)."""
    import torch

    from codetune.models.adapter import attach
    from codetune.models.load import load_model

    if dtype not in DTYPES:
        raise CodetuneError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    out = Path(out)
    check_destination(out, force=force, sources=(adapter,))
    adapter_settings(adapter)
    model, tokenizer = load_model(model_spec, dtype=torch.float32, device=device, quiet=True)
    peft_model = attach(model, adapter)
    probe = tokenizer(PROBE, return_tensors="pt").to(model.device)
    with torch.no_grad():
        before = peft_model(**probe).logits
        merged = peft_model.merge_and_unload()
        after = merged(**probe).logits
    diff = float((before - after).abs().max())
    if diff > MERGE_TOLERANCE * max(float(before.abs().max()), 1.0):
        raise RuntimeError(f"merged model differs from the adapter model by {diff:g} in the logits")
    merged = merged.to(getattr(torch, dtype))
    merged.config.dtype = getattr(torch, dtype)

    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        parameters = sum(p.numel() for p in merged.parameters())
        atomic_write_text(tmp / "README.md", card)
        record = {
            **(provenance or {}),
            "dtype": dtype,
            "parameters": parameters,
            "merge_max_abs_logit_diff": diff,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_json(tmp / PROVENANCE, record)
        # transformers writes the weights owner-only; a model folder is for sharing
        for path in tmp.iterdir():
            path.chmod(0o644)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, dtype, parameters, diff)


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; an old `out` (with --force) is removed only after that."""
    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
