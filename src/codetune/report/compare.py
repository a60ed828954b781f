"""Answer the same prompts with the base model and each adapter (greedy, chat template) and show them side by side."""

from __future__ import annotations

import re
import time
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from codetune.configio import StrictModel, load_config
from codetune.errors import CodetuneError
from codetune.files import atomic_write_json, atomic_write_text
from codetune.report import render
from codetune.report.plots import plot_text_panels


class Prompt(StrictModel):
    id: str = Field(..., min_length=1, description="Short name, used in file names.")
    text: str = Field(..., min_length=1)


class PromptFile(StrictModel):
    """A prompt set: an optional system turn and a list of prompts (plain strings or {id, text})."""

    system: str | None = None
    prompts: list[Prompt] = Field(..., min_length=1)

    @field_validator("prompts", mode="before")
    @classmethod
    def _strings_to_prompts(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [
                {"id": f"prompt-{i + 1}", "text": p} if isinstance(p, str) else p for i, p in enumerate(v)
            ]
        return v


def default_prompts_path() -> Path:
    return Path(str(resources.files("codetune.report") / "prompts" / "default.yaml"))


def load_prompts(path: str | Path | None = None) -> PromptFile:
    prompts = load_config(PromptFile, path or default_prompts_path())
    ids = [p.id for p in prompts.prompts]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CodetuneError(f"{path}: prompts: duplicate id {dupes[0]!r}; give each prompt a unique id")
    return prompts


def adapter_labels(adapters: list[Path], labels: list[str] | None) -> list[str]:
    if labels and len(labels) != len(adapters):
        raise CodetuneError(
            f"--label: got {len(labels)} labels for {len(adapters)} adapters; give one per --adapter"
        )
    if labels:
        out = list(labels)
    else:
        # `.../deep/adapter` -> deep, `.../checkpoint-40` -> <run>/checkpoint-40
        out = [a.parent.name if a.name == "adapter" else f"{a.parent.name}/{a.name}" for a in adapters]
    if len(set(out)) != len(out) or "base" in out:
        raise CodetuneError(
            f"--label: labels must be unique and not 'base', got {out}; pass --label for each adapter"
        )
    return out


def _check_adapter(path: Path) -> None:
    if not (path / "adapter_config.json").is_file():
        raise CodetuneError(
            f"{path}: adapter_config.json not found; pass a PEFT adapter folder (adapter/ or checkpoint-N/)"
        )


def generate_answers(
    model_spec: str,
    prompts: PromptFile,
    adapters: list[Path],
    labels: list[str],
    *,
    max_new_tokens: int = 512,
    device: str | None = None,
) -> dict[str, Any]:
    """Load the base model once; answer every prompt with it and with each adapter (greedy, the benchmark's generator:
    one batched pass for all of them, each row through its own adapter)."""
    for a in adapters:
        _check_adapter(a)
    from codetune.bench.generate import Decoding, Job
    from codetune.bench.generate_hf import HFGenerator
    from codetune.bench.prompts import render_prompt
    from codetune.models import load_model

    model, tokenizer = load_model(model_spec, device=device)
    system = [{"role": "system", "content": prompts.system}] if prompts.system else []
    models: list[tuple[str, Path | None]] = [("base", None), *zip(labels, adapters, strict=True)]
    cells = [(label, adapter, p) for label, adapter in models for p in prompts.prompts]
    jobs = [
        Job(str(i), render_prompt([*system, {"role": "user", "content": p.text}], tokenizer), (0,), adapter)
        for i, (_, adapter, p) in enumerate(cells)
    ]
    answers = {p.id: dict.fromkeys([label for label, _ in models], "") for p in prompts.prompts}
    cut: dict[str, list[str]] = {p.id: [] for p in prompts.prompts}

    def keep(key: str, _sample: int, text: str, at_limit: bool) -> None:
        label, _, p = cells[int(key)]
        answers[p.id][label] = text.strip()
        if at_limit:
            cut[p.id].append(label)

    start = time.time()
    # the base model and every adapter in one pass
    generator = HFGenerator(model, tokenizer, batch_size=len(jobs))
    generator.run(jobs, Decoding(max_new_tokens=max_new_tokens), on_result=keep, progress=False)
    return {
        "model": model_spec,
        "adapters": {label: str(a) for label, a in zip(labels, adapters, strict=True)},
        "system": prompts.system,
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy",
        "seconds": round(time.time() - start, 2),
        "prompts": [
            {"id": p.id, "text": p.text, "answers": answers[p.id], "cut": sorted(cut[p.id])}
            for p in prompts.prompts
        ],
    }


def _file_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "prompt"


def render_compare(result: dict[str, Any], out: Path, title: str = "Side-by-side answers") -> list[Path]:
    """Write compare.json, compare.md, compare.html and one PNG per prompt; return the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", result)
    setup = f"Model: {result['model']}. Greedy decoding, at most {result['max_new_tokens']} new tokens, chat template."
    md = [f"# {title}\n", setup, ""]
    body = [f"<p>{render.esc(setup)}</p>"]
    if result["adapters"]:
        rows = [[label, path] for label, path in result["adapters"].items()]
        md.append(render.md_table(["Label", "Adapter"], rows))
        body.append(render.html_table(["Label", "Adapter"], rows))
    pngs = []
    for p in result["prompts"]:
        limit = f" (cut at the {result['max_new_tokens']}-token limit)"
        panels = [(label + limit * (label in p.get("cut", [])), text) for label, text in p["answers"].items()]
        png = plot_text_panels(p["text"], panels, out / f"compare_{_file_id(p['id'])}.png")
        pngs.append(png)
        md += [f"## {p['id']}\n", f"> {p['text']}".replace("\n", "\n> "), "", f"![{p['id']}]({png.name})", ""]
        for label, text in panels:
            md += [f"### {label}\n", "````", text, "````", ""]
        body.append(f"<h2>{render.esc(p['id'])}</h2><pre>{render.esc(p['text'])}</pre>")
        body.append(render.side_by_side(panels))
        body.append(render.details("as an image", render.img_tag(png, p["id"])))
    atomic_write_text(out / "compare.md", "\n".join(md))
    atomic_write_text(out / "compare.html", render.page(title, "\n".join(body)))
    return pngs
