"""Evaluate one model (+ optional LoRA adapter) on a problem set: prompt, generate (resumable), extract, grade, summarize.

The eval folder (see docs/ARCHITECTURE.md) holds `generations.jsonl` (append-only), `generations.json`,
`eval_all.json`, `summary.json`, and `settings.json` (the generation settings the jsonl was made with, so a resume
never mixes generations from two different setups).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetune.bench.config import BenchConfig
from codetune.bench.extract import cut_inside_program, extract_code
from codetune.bench.generate import Decoding, Generator, Job, make_generator
from codetune.bench.prompts import build_messages, render_prompt
from codetune.errors import CodetuneError
from codetune.files import append_jsonl, atomic_write_json, file_lock, iter_jsonl, read_json

GENERATIONS = "generations.jsonl"
SEED = 0
_NO_GENERATION = {"sequences": 0, "new_tokens": 0, "seconds": 0.0, "tokens_per_s": 0.0}


def adapter_digest(adapter: str | Path | None) -> str | None:
    """sha256 of the adapter weights (or config): identifies an adapter even if its folder moves or is retrained."""
    if adapter is None:
        return None
    adapter = Path(adapter)
    for name in ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json"):
        f = adapter / name
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
    raise CodetuneError(f"{adapter}: not a PEFT adapter folder (adapter_config.json is missing)")


def generation_settings(model_spec: str, cfg: BenchConfig, adapter: str | Path | None) -> dict[str, Any]:
    """What determines a generation. `n` is left out: more samples extend, fewer reuse, the same jsonl."""
    sampled = cfg.temperature > 0
    return {
        "model": model_spec,
        "adapter_sha256": adapter_digest(adapter),
        "prompt_style": cfg.prompt_style,
        "system_prompt": cfg.system_prompt if cfg.prompt_style == "study" else None,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p if sampled else None,
        "max_new_tokens": cfg.max_new_tokens,
        "seed": SEED if sampled else None,
    }


def _problems_block(problems: list[Any], cfg: BenchConfig) -> dict[str, Any]:
    from codetune.bench.problems import problems_fingerprint

    return {"source": cfg.problems, "count": len(problems), "sha256": problems_fingerprint(problems)}


def _settings(
    model_spec: str, problems: list[Any], cfg: BenchConfig, adapter: str | Path | None
) -> dict[str, Any]:
    grading = {
        "extract": cfg.extract,
        "compare": cfg.compare,
        "timeout": cfg.timeout,
        "memory_mb": cfg.memory_mb,
    }
    settings = {
        "generation": generation_settings(model_spec, cfg, adapter),
        "n": cfg.n,
        "grading": grading,
        "k": sorted(set(cfg.k)),
        "problems": _problems_block(problems, cfg),
    }
    return json.loads(
        json.dumps(settings)
    )  # JSON-normalized, so it compares equal to what summary.json holds


def _check_generation_settings(out_dir: Path, gen: dict[str, Any]) -> None:
    """Generations already in `out_dir` must have been made with `gen`; with none there yet (a first attempt that
    failed, say on a wrong model name), the settings are simply replaced."""
    path = out_dir / "settings.json"
    made = out_dir / GENERATIONS
    if path.is_file() and made.is_file() and made.stat().st_size > 0:
        old = read_json(path)
        for key, value in gen.items():
            if old.get(key) != value:
                raise CodetuneError(
                    f"{path}: the generations in {out_dir} were made with {key}={old.get(key)!r}, not {value!r}; "
                    f"use another output folder or delete this one"
                )
    else:
        atomic_write_json(path, gen)


def _repair_torn_tail(path: Path) -> None:
    """Cut a partial last line (a kill during a write) so that the next append starts on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())


def load_generations(path: Path, ids: set[str], n: int) -> dict[tuple[str, int], dict]:
    """(question_id, sample) -> record, for the problems and sample indices asked for; first record wins."""
    records: dict[tuple[str, int], dict] = {}
    if not path.is_file():
        return records
    for rec in iter_jsonl(path, tolerate_torn_tail=True):
        qid, sample = str(rec.get("question_id")), rec.get("sample")
        if qid in ids and isinstance(sample, int) and 0 <= sample < n and "output" in rec:
            records.setdefault((qid, sample), rec)
    return records


def is_complete(
    out_dir: str | Path,
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    adapter: str | Path | None = None,
) -> bool:
    """True when `out_dir/summary.json` was written with exactly these settings (evaluate would return it as is)."""
    return _complete_summary(Path(out_dir), _settings(model_spec, problems, cfg, adapter)) is not None


def _complete_summary(out_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """`out_dir/summary.json` when it was written with exactly `settings`, else None."""
    path = out_dir / "summary.json"
    summary = read_json(path) if path.is_file() else None
    return summary if summary is not None and summary.get("settings") == settings else None


@dataclass(frozen=True)
class EvalTarget:
    """One model to evaluate: the base model (`adapter=None`) or a LoRA adapter folder, and its eval folder."""

    out_dir: Path
    adapter: Path | None = None
    label: str | None = None
    step: int | None = None


@dataclass
class _Pending:
    target: EvalTarget
    settings: dict[str, Any]
    gen_path: Path
    records: dict[tuple[str, int], dict] = field(default_factory=dict)
    missing: dict[str, tuple[int, ...]] = field(default_factory=dict)


def evaluate(
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    out_dir: str | Path,
    *,
    adapter: str | Path | None = None,
    label: str | None = None,
    step: int | None = None,
    model: Any = None,
    tokenizer: Any = None,
    engine: Generator | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate (resuming), grade and summarize one model; return the summary. A complete summary with the same
    settings is returned as is, without loading the model."""
    target = EvalTarget(Path(out_dir), Path(adapter) if adapter is not None else None, label, step)
    return evaluate_many(
        model_spec,
        problems,
        cfg,
        [target],
        model=model,
        tokenizer=tokenizer,
        engine=engine,
        progress=progress,
    )[0]


def adapter_label(adapter: Path) -> str:
    """A name for an adapter given no label: a run's `adapter/` or `checkpoint-<step>/` is named with its run."""
    name = adapter.resolve().name
    if name == "adapter" or name.startswith("checkpoint-"):
        return f"{adapter.resolve().parent.name}/{name}"
    return name


def _recorded(run_dirs: list[Path], key: str, differ: str) -> tuple[str, Path] | None:
    """The one value of `key` the runs' `run.json` files record, with a file that says so; runs that record
    different values cannot share one base model (`differ` says how they differ)."""
    found: dict[str, Path] = {}
    for run_dir in map(Path, run_dirs):
        path = run_dir / "run.json"
        info = read_json(path) if path.is_file() else {}
        value = info.get(key) if isinstance(info, dict) else None
        if isinstance(value, str) and value:
            found.setdefault(value, path)
    if len(found) > 1:
        where = ", ".join(f"{path}: {value}" for value, path in found.items())
        raise CodetuneError(f"{key}: these runs were trained {differ} ({where})")
    return next(iter(found.items()), None)


def trained_from(run_dirs: list[Path]) -> tuple[str, Path] | None:
    """The base model spec the runs were trained from (`run.json` base_model) and the file that says so."""
    return _recorded(run_dirs, "base_model", "from different base models")


def trained_on(run_dirs: list[Path]) -> str | None:
    """The base model commit the runs recorded (`run.json` base_model_revision), so that their checkpoints are graded
    on the weights they were trained on."""
    found = _recorded(run_dirs, "base_model_revision", "on different base weights")
    return found[0] if found else None


def check_base(model_spec: str, run_dirs: list[Path]) -> None:
    """Adapters are graded on the base model they were trained on, not on another one of the same shapes."""
    from codetune.models.source import same_model

    trained = trained_from(run_dirs)
    if trained is not None and same_model(model_spec, trained[0]) is False:
        raise CodetuneError(
            f"model {model_spec}: the adapters were trained on {trained[0]} ({trained[1]}: base_model); grade "
            "them on that model"
        )


def evaluate_many(
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    targets: Sequence[EvalTarget],
    *,
    model: Any = None,
    tokenizer: Any = None,
    engine: Generator | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate several adapters of one base model (and the base model itself) in one generation pass: their
    answers share batches. Each target keeps its own resumable eval folder; the summaries come back in order.
    Adapters saved by `codetune train` are graded (with the base model) on the base model commit their runs
    recorded; the summaries keep `model_spec` as given."""
    if not problems:
        raise CodetuneError(f"{cfg.problems}: no problems left after filtering; loosen the filter")
    folders = [Path(t.out_dir).resolve() for t in targets]
    if len(set(folders)) != len(folders):
        raise CodetuneError("evaluate: two models were given the same output folder")
    from codetune.models.load import model_revision, pinned_weights

    load = model_spec
    runs = sorted({Path(t.adapter).parent for t in targets if t.adapter is not None})
    check_base(model_spec, runs)
    if model is None and engine is None:
        load = pinned_weights(model_spec, trained_on(runs))
    summaries: dict[int, dict[str, Any]] = {}
    pending: dict[int, _Pending] = {}
    for i, t in enumerate(targets):
        settings = _settings(model_spec, problems, cfg, t.adapter)
        done = _complete_summary(Path(t.out_dir), settings)
        if done is not None:
            summaries[i] = done
        else:
            pending[i] = _Pending(t, settings, Path(t.out_dir) / GENERATIONS)
    if not pending:
        return [summaries[i] for i in range(len(targets))]

    with ExitStack() as stack:
        ids = {p.question_id for p in problems}
        for p in pending.values():
            p.gen_path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(file_lock(p.gen_path, timeout=5))
            _check_generation_settings(p.gen_path.parent, p.settings["generation"])
            _repair_torn_tail(p.gen_path)
            p.records = load_generations(p.gen_path, ids, cfg.n)
            for q in problems:
                todo = tuple(s for s in range(cfg.n) if (q.question_id, s) not in p.records)
                if todo:
                    p.missing[q.question_id] = todo
        gen_stats = _generate(load, problems, cfg, pending, model, tokenizer, engine, progress)
        revision = model_revision(load)
        for i, p in pending.items():
            summaries[i] = _grade_and_summarize(model_spec, problems, cfg, p, gen_stats, progress, revision)
    return [summaries[i] for i in range(len(targets))]


def _generate(
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    pending: dict[int, _Pending],
    model: Any,
    tokenizer: Any,
    engine: Generator | None,
    progress: bool,
) -> dict[str, Any]:
    """Generate every missing sample of every pending target in one engine call, appending each as it finishes."""
    if not any(p.missing for p in pending.values()):
        return _NO_GENERATION
    engine = engine or make_generator(model_spec, cfg, model=model, tokenizer=tokenizer)
    by_id = {q.question_id: q for q in problems}
    prompts: dict[str, str] = {}
    jobs, owner = [], {}
    for i, p in pending.items():
        for qid, samples in p.missing.items():
            if qid not in prompts:
                messages = build_messages(by_id[qid], cfg.prompt_style, cfg.system_prompt)
                prompts[qid] = render_prompt(messages, engine.tokenizer)
            key = f"{i}/{qid}"
            owner[key] = (p, qid)
            jobs.append(Job(key, prompts[qid], samples, p.target.adapter))

    def save(key: str, sample: int, text: str, cut: bool) -> None:
        p, qid = owner[key]
        code = extract_code(text, cfg.extract)
        rec = {"question_id": qid, "sample": sample, "output": text, "code": code, "hit_token_limit": cut}
        append_jsonl(p.gen_path, rec)
        p.records[(qid, sample)] = rec

    run = engine.run(jobs, Decoding.from_config(cfg, seed=SEED), on_result=save, progress=progress)
    return {
        "backend": engine.backend,
        "models_batched": sum(1 for p in pending.values() if p.missing),
        "sequences": run.sequences,
        "new_tokens": run.new_tokens,
        "seconds": round(run.seconds, 3),
        "tokens_per_s": round(run.tokens_per_s, 2),
    }


def _token_limit_counts(p: _Pending, problems: list[Any], n: int, rule: Any) -> dict[str, int | None]:
    """Answers that reached max_new_tokens unfinished, and those of them whose graded program the cut reached
    (`extract.cut_inside_program`). None when some answers predate the flag."""
    recs = [p.records[(q.question_id, s)] for q in problems for s in range(n)]
    if any("hit_token_limit" not in r for r in recs):
        return {"hit_token_limit": None, "cut_in_code": None}
    hit = [r for r in recs if r["hit_token_limit"]]
    return {
        "hit_token_limit": len(hit),
        "cut_in_code": sum(cut_inside_program(r["output"], rule) for r in hit),
    }


def _grade_and_summarize(
    model_spec: str,
    problems: list[Any],
    cfg: BenchConfig,
    p: _Pending,
    gen_stats: dict[str, Any],
    progress: bool,
    revision: str | None,
) -> dict[str, Any]:
    from codetune.bench.grade import grade_all
    from codetune.bench.metrics import summarize

    out_dir, t = p.gen_path.parent, p.target
    outputs = {
        q.question_id: [p.records[(q.question_id, s)]["output"] for s in range(cfg.n)] for q in problems
    }
    # Code is re-extracted from the raw output, so changing the extraction rule never needs new generations.
    codes = {qid: [extract_code(o, cfg.extract) for o in outs] for qid, outs in outputs.items()}
    atomic_write_json(
        out_dir / "generations.json",
        [{"question_id": qid, "code_list": codes[qid], "output_list": outputs[qid]} for qid in codes],
    )
    rows = grade_all(
        problems,
        codes,
        compare=cfg.compare,
        timeout=cfg.timeout,
        memory_mb=cfg.memory_mb,
        workers=cfg.workers,
        progress=progress,
    )
    for row in rows:
        row["output_list"] = outputs[row["question_id"]]
    atomic_write_json(out_dir / "eval_all.json", rows)
    summary = {
        "label": t.label or ("base" if t.adapter is None else adapter_label(Path(t.adapter))),
        "model": model_spec,
        "model_revision": revision,
        "adapter": str(t.adapter) if t.adapter is not None else None,
        "step": t.step,
        "prompt_style": cfg.prompt_style,
        "extract": cfg.extract,
        "compare": cfg.compare,
        "n": cfg.n,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p if cfg.temperature > 0 else None,
        "max_new_tokens": cfg.max_new_tokens,
        "stop_at_program": Decoding.from_config(cfg).stop_at_program,
        **_token_limit_counts(p, problems, cfg.n, cfg.extract),
        "tests": "public+private" if any(q.private_tests for q in problems) else "public only",
        "problems": p.settings["problems"],
        **summarize(rows, cfg.k),
        # Shared by the models generated in the same pass (`models_batched`); zeros when nothing was missing.
        "generation": gen_stats if p.missing else _NO_GENERATION,
        "settings": p.settings,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return read_json(out_dir / "summary.json")
