"""`codetune report|compare|plot`: report folders, side-by-side answers and single loss plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def report(
    runs: list[Path] = typer.Argument(None, help="Run folders (log.json, eval/sweep.json, eval/<label>/)."),
    evals: list[Path] = typer.Option(
        [], "--eval", help="Extra eval folders to compare (summary.json + eval_all.json)."
    ),
    base: Path | None = typer.Option(
        None,
        "--base",
        help="Eval folder of the base model (or the base/ folder of a `codetune run`; default: a run's eval/base, or the "
        "base/eval beside an experiment's arms/).",
    ),
    study_logs: list[Path] = typer.Option([], "--study-log", help="Reference loss logs, drawn dashed."),
    study_summaries: list[Path] = typer.Option(
        [], "--study-summary", help="Reference LiveCodeBench summaries (study format)."
    ),
    out: Path = typer.Option(..., "--out", help="Report folder to write."),
    title: str = typer.Option("codetune report", "--title", help="Report title."),
) -> None:
    """Loss and Pass@1 graphs, results table, paired significance tests and answers, in one HTML file.

    Runs with several evaluated checkpoints also get a leave-one-problem-out estimate of their best checkpoint
    (the best's own Pass@1 was measured on the problems that chose it); runs of one arm trained with several seeds
    (`codetune run` with `seeds:`) get a Seeds section with intervals that include seed-to-seed noise.
    """
    from codetune.files import read_json
    from codetune.report import build_report

    html = build_report(
        list(runs or []),
        out,
        evals=list(evals),
        base=base,
        study_logs=list(study_logs),
        study_summaries=list(study_summaries),
        title=title,
    )
    print_summary(read_json(out / "stats.json"))
    print(f"wrote {html}")


def print_selection(run_dir: Path) -> None:
    """After a sweep: the leave-one-problem-out estimate beside the best checkpoint's own Pass@1."""
    from codetune.report.inputs import read_run
    from codetune.report.selection import candidates, select

    run = read_run(run_dir)
    sel = select(run.name, candidates(run))
    if sel is not None:
        _print_selection(sel.to_json())


def _print_selection(s: dict[str, Any]) -> None:
    loo = s["leave_one_problem_out"]["pass@1"]
    print(
        f"{s['run']}: leave one problem out {100 * loo:.1f}% against {100 * s['best_on_benchmark']['pass_at_1']:.1f}% "
        f"for the best of {s['checkpoints']} checkpoints on the problems that chose it"
    )


def print_summary(stats: dict[str, Any]) -> None:
    """The report's headline numbers, from its stats.json."""
    for w in stats.get("warnings", []):
        print(f"warning: {w}")
    for m in stats["models"]:
        print(
            f"{m['name']:<24} {m['checkpoint']:<18} Pass@1 {100 * m['pass@1']:5.1f}%  {m['solved']}/{m['total']}"
        )
    for p in stats["pairs"]:
        print(f"{p['a']} vs {p['b']}: {p['verdict']}")
    for s in stats.get("selection", {}).get("runs", []):
        _print_selection(s)
    seeds = stats.get("seeds", {})
    for g in seeds.get("arms", []):
        lo, hi = g["pass@1_ci95"]
        print(
            f"{g['arm']}: mean of {len(g['runs'])} seeds {100 * g['pass@1_mean']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
        )
    for p in seeds.get("pairs", []):
        print(f"{p['a']} vs {p['b']} (over seeds): {100 * p['diff']:+.1f} pts, {p['verdict']}")


def compare(
    model: str = typer.Option(..., "--model", help="Base model: catalog name, .gguf file, folder or hub id."),
    adapters: list[Path] = typer.Option([], "--adapter", help="PEFT adapter folder (repeat for several)."),
    labels: list[str] = typer.Option([], "--label", help="Display name per --adapter, in the same order."),
    prompts: Path | None = typer.Option(None, "--prompts", help="Prompt YAML (default: the shipped set)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", min=1, help="Generation length limit."),
    out: Path = typer.Option(..., "--out", help="Folder for compare.md, compare.html and PNGs."),
    title: str = typer.Option("Side-by-side answers", "--title", help="Page title."),
) -> None:
    """Answer the same prompts with the base model and each adapter (greedy) and show them side by side."""
    from codetune.files import check_out_folder
    from codetune.report.compare import adapter_labels, generate_answers, load_prompts, render_compare

    check_out_folder(out)  # before the model loads and answers
    prompt_set = load_prompts(prompts)
    names = adapter_labels(list(adapters), list(labels) or None)
    result = generate_answers(model, prompt_set, list(adapters), names, max_new_tokens=max_new_tokens)
    render_compare(result, out, title)
    print(f"wrote {out / 'compare.html'} ({len(result['prompts'])} prompts, {1 + len(names)} models)")


def plot(
    log: Path = typer.Argument(..., help="log.json (codetune) or *_train_val_test_log.json (study)."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    title: str | None = typer.Option(None, "--title", help="Plot title (default: the log's name)."),
) -> None:
    """Plot train/validation/test loss against step."""
    from codetune.errors import CodetuneError
    from codetune.files import refuse_input_as_output
    from codetune.report.inputs import read_log
    from codetune.report.plots import plot_losses

    refuse_input_as_output("--out", out, log)
    if log.suffix == ".jsonl":
        raise CodetuneError(
            f"{log}: plot reads a log.json (a list of steps), not TRL's metrics.jsonl records"
        )
    rows = read_log(log)
    if not rows:
        raise CodetuneError(f"{log}: no logged steps to plot")
    # a run's log is named by its run
    name = log.parent.resolve().name if log.name == "log.json" else log.stem
    plot_losses(rows, out, title or f"{name}: loss")
    print(f"wrote {out} ({len(rows)} steps)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
    app.command("plot")(plot)
