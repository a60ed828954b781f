"""`codetune run`: a whole study from one experiment file (default: the embedded quickstart)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def _fmt_value(v: object) -> str:
    if isinstance(v, dict):
        return " / ".join(f"{k} {x}" for k, x in v.items())
    return str(v)


def run(
    experiment: Path | None = typer.Argument(
        None, help="Experiment YAML. Default: the embedded quickstart (offline 0.5B model, shipped samples)."
    ),
    override: list[str] = typer.Option(
        [], "--override", "-o", help="KEY=VALUE, e.g. train.max_steps=4 (repeatable)."
    ),
    out: str | None = typer.Option(None, "--out", help="Experiment folder (overrides `out`)."),
    model: str | None = typer.Option(None, "--model", help="Base model (overrides `model`)."),
    problems: str | None = typer.Option(
        None, "--problems", help="LiveCodeBench JSONL (overrides `bench.problems`)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (stages, sizes, time estimate) and stop."
    ),
) -> None:
    """Train every arm, evaluate the base model and the chosen checkpoints, pick the best, write the report.

    Re-running the same command skips finished stages and resumes unfinished ones, even after a kill -9.
    """
    from codetune.run.config import load_experiment
    from codetune.run.runner import ExperimentRunner

    extra = (
        [f"out={out}"] * bool(out)
        + [f"model={model}"] * bool(model)
        + [f"bench.problems={problems}"] * bool(problems)
    )
    exp = load_experiment(experiment, list(override) + extra)
    runner = ExperimentRunner(exp, console)
    if dry_run:
        from codetune.run.state import StageState

        runner.check_folder()
        plan = runner.plan()
        state = StageState(runner.out)
        done = {st.name for st in plan.stages if state.is_complete(st.name)}
        table = Table("stage", "details", "estimate", title=f"{exp.name}: plan on {plan.device}")
        for st in plan.stages:
            details = ", ".join(f"{k}={_fmt_value(v)}" for k, v in st.detail.items())
            estimate = "complete: skipped" if st.name in done else _fmt_seconds(st.estimate_s)
            table.add_row(st.name, details, estimate)
        console.print(table)
        total = plan.total_estimate_s(done)
        if len(done) == len(plan.stages):
            console.print("every stage is complete: a run would only print the report's summary")
        else:
            console.print(f"total estimate: {_fmt_seconds(total) if total is not None else 'unknown'}")
        for note in plan.notes:
            console.print(f"[yellow]note:[/] {note}")
        return
    report = runner.run()
    from codetune.cli.report_cmd import print_summary
    from codetune.files import read_json

    if (report / "stats.json").is_file():
        print_summary(read_json(report / "stats.json"))
    console.print(f"[bold green]done.[/] report: {report / 'report.html'}")
    arms = report.parent / "arms"
    console.print(f"export an arm's best checkpoint: codetune export {arms}/<arm> --out DIR", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
