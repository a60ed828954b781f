"""`codetune eval`: evaluate a model (+ adapter), or sweep a training run's checkpoints, on LiveCodeBench problems."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

FILTER_KEYS = ("platform", "difficulty", "start", "end", "ids", "limit")
# the problem filters, shared with `codetune data check`
PLATFORM = typer.Option(None, "--platform", help="Keep these platforms (repeat or a,b).")
DIFFICULTY = typer.Option(None, "--difficulty", help="easy, medium, hard (repeat or a,b).")
START = typer.Option(None, "--start", help="First contest month, YYYY-MM.")
END = typer.Option(None, "--end", help="Last contest month, YYYY-MM.")
RELEASE = typer.Option(
    None,
    "--release",
    help="LiveCodeBench release tag of hub problems, e.g. release_v5 (default), v5 or v4_v5.",
)


def refuse_local_release(release: str | None, problems: str) -> None:
    """`--release` picks files of the hub dataset; a local or built-in set has none to pick."""
    from codetune.bench.problems import is_hub_source
    from codetune.errors import CodetuneError

    if release is not None and not is_hub_source(problems):
        raise CodetuneError(
            f"--release {release}: applies to hub problems only; {problems} is a local set, used as it is"
        )


def split_list(values: list[str] | None) -> list[str] | None:
    """`--platform a --platform b` or `--platform a,b` -> [a, b]; nothing given -> None (keep the config's)."""
    items = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return items or None


def build_config(config: Path | None, overrides: list[str], flags: dict[str, Any]) -> Any:
    """Config file, then `--override k=v`, then the dedicated flags (those not given are None and left alone)."""
    from codetune.bench.config import BenchConfig
    from codetune.configio import apply_overrides, read_yaml, validate

    data = read_yaml(config) if config else {}
    apply_overrides(data, overrides)
    for key, value in flags.items():
        if value is None:
            continue
        if key in FILTER_KEYS:
            data.setdefault("filter", {})
            if not isinstance(data["filter"], dict):
                data["filter"] = {}
            data["filter"][key] = value
        else:
            data[key] = value
    return validate(BenchConfig, data, str(config) if config else "eval options", overrides)


def eval_command(
    model: str | None = typer.Option(
        None,
        "--model",
        help="Base model: catalog name, .gguf file, HF folder or hub id (owner/name[@revision]); with --run or an "
        "--adapter of a run, default: the model the run was trained on.",
    ),
    adapter: Path | None = typer.Option(
        None, "--adapter", help="LoRA adapter folder to evaluate on the base."
    ),
    run: Path | None = typer.Option(
        None, "--run", help="Training run folder: sweep base + checkpoints into RUN/eval/ and pick the best."
    ),
    problems: str | None = typer.Option(
        None,
        "--problems",
        help="LiveCodeBench JSONL, builtin:quickstart or livecodebench/code_generation_lite.",
    ),
    release: str | None = RELEASE,
    platform: list[str] | None = PLATFORM,
    difficulty: list[str] | None = DIFFICULTY,
    start: str | None = START,
    end: str | None = END,
    ids: str | None = typer.Option(None, "--ids", help="Comma-separated question ids."),
    limit: int | None = typer.Option(None, "--limit", help="Keep the first N problems after filtering."),
    prompt_style: str | None = typer.Option(None, "--prompt-style", help="lcb (LiveCodeBench's) or study."),
    extract: str | None = typer.Option(None, "--extract", help="Code extraction rule: lcb or study."),
    n: int | None = typer.Option(None, "--n", help="Samples per problem."),
    temperature: float | None = typer.Option(None, "--temperature", help="0 = greedy."),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", help="Generation length limit per answer (default 1024)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Answers generated together (default 8; more is faster on a GPU)."
    ),
    compare: str | None = typer.Option(None, "--compare", help="Output comparison: lcb or exact."),
    backend: str | None = typer.Option(None, "--backend", help="auto, hf or vllm."),
    every: int = typer.Option(
        1, "--every", help="With --run: evaluate every K-th checkpoint (the last always)."
    ),
    no_base: bool = typer.Option(False, "--no-base", help="With --run: skip the base model."),
    config: Path | None = typer.Option(None, "--config", help="Bench YAML (BenchConfig keys)."),
    override: list[str] = typer.Option([], "--override", "-o", help="KEY=VALUE, e.g. filter.limit=5."),
    out: Path | None = typer.Option(
        None, "--out", help="Eval folder. With --run: the base model's eval folder (default RUN/eval/base)."
    ),
    label: str | None = typer.Option(None, "--label", help="Label recorded in summary.json."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Generate, extract, grade in a sandbox and summarize pass@1; re-running resumes where it stopped."""
    from codetune.errors import CodetuneError

    if adapter is not None and run is not None:
        raise CodetuneError("--adapter and --run: give one (an adapter folder, or a run folder to sweep)")
    if run is None and (no_base or every != 1):
        raise CodetuneError(
            f"{'--no-base' if no_base else '--every'}: only applies with --run (a sweep of a run)"
        )
    if run is None and out is None:
        raise CodetuneError(
            "--out: missing; the eval folder to write (generations, eval_all.json, summary.json)"
        )
    model = model or _trained_model(
        run if run is not None else adapter.parent if adapter is not None else None
    )
    flags = {
        "problems": problems,
        "release": release,
        "platform": split_list(platform),
        "difficulty": split_list(difficulty),
        "start": start,
        "end": end,
        "ids": split_list([ids] if ids else None),
        "limit": limit,
        "prompt_style": prompt_style,
        "extract": extract,
        "n": n,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "compare": compare,
        "backend": backend,
    }
    cfg = build_config(config, override, flags)
    if no_progress:
        from codetune.cli import library_bars_off

        library_bars_off()

    from codetune.bench.problems import load_problems

    refuse_local_release(release, cfg.problems)
    problem_list = load_problems(cfg.problems, cfg.filter, cfg.release)
    if run is not None:
        from codetune.bench.sweep import sweep_run

        result = sweep_run(
            run, model, problem_list, cfg, every=every, include_base=not no_base, base_dir=out,
            progress=not no_progress,
        )  # fmt: skip
        if no_progress:
            print(f"best: {result['best']}  ({run / 'eval' / 'sweep.json'})")
        from codetune.cli.report_cmd import print_selection

        print_selection(run)
        return

    from codetune.bench.evaluate import evaluate

    assert out is not None  # checked above
    started = time.time()
    summary = evaluate(model, problem_list, cfg, out, adapter=adapter, label=label, progress=not no_progress)
    print_summary(summary, out, earlier=(out / "summary.json").stat().st_mtime < started)


def _trained_model(run: Path | None) -> str:
    """The base model `run` (a training run folder) was trained from, for a command given no --model."""
    from codetune.bench.evaluate import trained_from
    from codetune.errors import CodetuneError

    found = trained_from([run]) if run is not None and run.is_dir() else None
    if found is None:
        raise CodetuneError(
            "--model: missing; the base model to evaluate (it can be left out with --run, or an --adapter of a run)"
        )
    return found[0]


def print_summary(summary: dict[str, Any], out: Path, *, earlier: bool = False) -> None:
    """`earlier`: the folder held this complete evaluation already, so nothing was generated now."""
    from rich.console import Console
    from rich.table import Table

    table = Table("group", "pass@1", "solved", title=f"{summary['label']}: {summary['problems']['source']}")
    ci = summary.get("pass@1_ci95")
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    table.add_row("all", f"{summary['pass@1']:.3f}{interval}", f"{summary['solved']}/{summary['total']}")
    for kind in ("by_difficulty", "by_platform"):
        for name, g in summary.get(kind, {}).items():
            table.add_row(f"{kind[3:]}: {name}", f"{g['pass@1']:.3f}", f"{g['solved']}/{g['total']}")
    console = Console()
    console.print(table)
    if per := summary.get("solved_per_sample"):
        console.print(
            f"one sample alone solves {min(per)} to {max(per)} of {summary['total']} "
            f"(sample 1..{len(per)}: {', '.join(map(str, per))})"
        )
    if hits := summary.get("hit_token_limit"):
        answers = summary["total"] * summary.get("n", 1)
        inside = summary.get("cut_in_code")
        console.print(
            f"[yellow]{hits} of {answers} answers reached the {summary['max_new_tokens']}-token limit unfinished[/]"
            + (
                f", {inside} of them before their program was complete (raise --max-new-tokens)"
                if inside
                else ""
            )
        )
    gen = summary.get("generation") or {}
    if earlier:
        console.print("already complete in this folder: nothing generated or graded now")
    elif gen.get("new_tokens"):
        console.print(
            f"generated {gen['new_tokens']} tokens at {gen['tokens_per_s']} tok/s ({gen.get('backend')})"
        )
    console.print(f"tests: {summary['tests']}; written to {out}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
