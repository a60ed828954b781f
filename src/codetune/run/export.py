"""Export a training run's chosen checkpoint as a standalone model: which adapter, on which base, and its model card."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codetune import __version__
from codetune.bench.sweep import BEST_RULE, load_losses, sweep_targets
from codetune.configio import read_yaml
from codetune.errors import CodetuneError
from codetune.files import not_found, read_json

CHOICES = ("best", "last", "lowest-val")
RULES = {
    "best": BEST_RULE,
    "last": "the run's last checkpoint",
    "lowest-val": "lowest validation loss (the benchmark was not used)",
}


@dataclass(frozen=True)
class Choice:
    adapter: Path
    label: str
    step: int | None
    rule: str
    benchmark: dict[str, Any] | None  # the checkpoint's row of eval/sweep.json, when it was evaluated


def choose(run_dir: Path, which: str = "best") -> Choice:
    """The adapter folder of `run_dir` that `which` names: best (eval/sweep.json's pick), last, lowest-val, or a step."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CodetuneError(not_found(run_dir, "run folder"))
    targets = sweep_targets(run_dir)
    if not targets:
        raise CodetuneError(
            f"{run_dir}: no checkpoint-<step>/ or adapter/ folder with an adapter_config.json"
        )
    sweep = run_dir / "eval" / "sweep.json"
    swept = _object(sweep) if sweep.is_file() else {}
    rows = swept.get("rows")
    by_label = (
        {r["label"]: r for r in rows if isinstance(r, dict) and "label" in r}
        if isinstance(rows, list)
        else {}
    )
    if which == "best":
        if not sweep.is_file():
            raise CodetuneError(
                f"{sweep}: not found; evaluate the checkpoints first (codetune eval --run {run_dir}) or pass "
                "--checkpoint last, lowest-val or a step"
            )
        best = swept.get("best")
        if best in (None, "base"):
            raise CodetuneError(
                f"{sweep}: best is {best!r}: no checkpoint was picked, so there is nothing to merge"
            )
        found = [t for t in targets if t[0] == best]
        if not found:
            raise CodetuneError(f"{sweep}: best checkpoint {best!r} has no adapter folder in {run_dir}")
        label, step, adapter = found[0]
    elif which == "last":
        label, step, adapter = targets[-1]
    elif which == "lowest-val":
        losses = load_losses(run_dir)
        scored = []
        for target in targets:
            val = losses.get(target[1], {}).get("val_loss") if target[1] is not None else None
            if isinstance(val, int | float) and math.isfinite(val):
                scored.append((val, target[1], target))
        if not scored:
            raise CodetuneError(f"{run_dir / 'log.json'}: no validation loss at any checkpoint's step")
        label, step, adapter = min(scored, key=lambda x: x[:2])[2]
    elif which.isdigit() or any(t[0] == which for t in targets):  # a step, or a label as the sweep shows it
        found = [t for t in targets if t[0] == which or (which.isdigit() and t[1] == int(which))]
        if not found:
            steps = ", ".join(str(t[1]) for t in targets if t[1] is not None)
            raise CodetuneError(f"--checkpoint: no checkpoint at step {which} in {run_dir} (steps: {steps})")
        label, step, adapter = found[0]
    else:
        raise CodetuneError(f"--checkpoint: {which!r} is not a step or one of {', '.join(CHOICES)}")
    rule = RULES.get(which, f"step {which}, named by the user")
    return Choice(adapter, label, step, rule, by_label.get(label))


def _object(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise CodetuneError(f"{path}: expected a JSON object with rows and best")
    return data


def run_settings(run_dir: Path | None) -> dict[str, Any]:
    """The run's config.yaml (base model, data, training recipe), or nothing when there is none."""
    path = run_dir / "config.yaml" if run_dir else None
    return read_yaml(path) if path is not None and path.is_file() else {}


def base_hub_id(model_spec: str) -> str | None:
    """The hub model a spec stands for: itself (a hub id), or the model a catalog GGUF was converted from."""
    from codetune.models.catalog import CATALOG
    from codetune.models.source import HUB_ID, split_revision

    entry = CATALOG.get(model_spec.strip().lower())
    if entry is not None:
        return entry.hub_id
    name, _ = split_revision(model_spec)
    return name if HUB_ID.match(name) and not Path(model_spec).exists() else None


def model_card(
    name: str,
    model_spec: str,
    adapter: Path,
    lora: dict[str, Any],
    settings: dict[str, Any],
    choice: Choice | None,
    dtype: str,
) -> str:
    """A Hugging Face model card: what was merged into what, trained on which data, chosen how, scoring what."""
    hub_id = base_hub_id(model_spec)
    data = settings.get("data") if isinstance(settings.get("data"), dict) else {}
    base_line = f"`{model_spec}`" + (f" ({hub_id})" if hub_id and hub_id != model_spec else "")
    if hub_id and hub_id != model_spec:
        base_line += ", dequantized from its Q4_K_M GGUF: the base weights carry that quantization's error"
    lines = ["---"]
    if hub_id:
        lines.append(f"base_model: {hub_id}")
    lines += ["library_name: transformers", "tags: [codetune, lora, merged]", "---", "", f"# {name}", ""]
    lines += [
        f"A LoRA adapter merged into its base model by codetune {__version__} ({dtype}).",
        "",
        f"- Base model: {base_line}",
        f"- Adapter: `{adapter}`" + (f" (`{choice.label}`, step {choice.step})" if choice else ""),
        f"- LoRA: r={lora.get('r')}, alpha={lora.get('lora_alpha')}, dropout={lora.get('lora_dropout')}, "
        f"on {', '.join(sorted(lora.get('target_modules') or [])) or '?'}"
        + "".join(
            f", {label}" for key, label in (("use_rslora", "rsLoRA"), ("use_dora", "DoRA")) if lora.get(key)
        ),
    ]
    if data:
        lines.append(
            f"- Training data: `{data.get('dataset')}`, answer {_answer(data)}, format `{data.get('format', 'chat')}`"
        )
        if data.get("format", "chat") == "chat" and data.get("system_prompt"):
            rows = " (rows without a system turn of their own)" if _conversations(data) else ""
            lines.append(
                f'- System prompt used in training{rows} (use it when prompting): "{data["system_prompt"]}"'
            )
    if choice:
        lines.append(f"- Checkpoint chosen by: {choice.rule}")
        b = choice.benchmark
        if b:
            picked = choice.rule == RULES["best"]  # chosen on this very number: say it flatters
            lines.append(
                f"- Benchmark at this checkpoint: Pass@1 {b.get('pass@1'):.3f} ({b.get('solved')}/{b.get('total')} "
                "problems)."
                + (" Picking the best of several checkpoints on the same problems flatters this number; the run's "
                   "report gives the leave-one-problem-out estimate." if picked else "")
            )  # fmt: skip
    return "\n".join(lines) + "\n"


def _conversations(data: dict[str, Any]) -> str | None:
    columns = data.get("columns")
    return columns.get("messages") if isinstance(columns, dict) else None


def _answer(data: dict[str, Any]) -> str:
    column = _conversations(data)
    return f"the last assistant turn of `{column}`" if column else f"`{data.get('response', 'output')}`"
