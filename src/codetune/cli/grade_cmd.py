"""`codetune grade`: grade a generations file against a problem set in the sandbox (LiveCodeBench eval_all.json)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from codetune.cli.bench_cmd import RELEASE, refuse_local_release
from codetune.errors import CodetuneError


def _read_generations(path: Path) -> dict[str, list[str]]:
    from codetune.files import read_json

    data = read_json(path)
    if not isinstance(data, list):
        raise CodetuneError(f"{path}: expected a list of {{question_id, code_list}} objects")
    if not data:
        raise CodetuneError(f"{path}: no generations (an empty list)")
    out: dict[str, list[str]] = {}
    for i, row in enumerate(data):
        if not isinstance(row, dict) or not isinstance(row.get("question_id"), str):
            raise CodetuneError(f"{path}: entry {i}: field 'question_id' missing or not a string")
        codes = row.get("code_list")
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
            raise CodetuneError(
                f"{path}: entry {i} ({row['question_id']}): field 'code_list' must be a non-empty list of strings"
            )
        if row["question_id"] in out:
            raise CodetuneError(f"{path}: entry {i}: question_id {row['question_id']!r} appears twice")
        out[row["question_id"]] = codes
    return out


def grade(
    problems: str = typer.Option(
        ..., "--problems", help="LiveCodeBench JSONL, builtin:quickstart or a hub dataset id."
    ),
    generations: Path = typer.Option(..., "--generations", help="JSON list of {question_id, code_list}."),
    out: Path = typer.Option(..., "--out", help="Where to write the graded rows (eval_all.json form)."),
    compare: str = typer.Option(
        "lcb", "--compare", help="lcb (LiveCodeBench: numbers equal as decimals) or exact."
    ),
    timeout: float = typer.Option(
        6.0, "--timeout", min=0.01, max=3600, help="Seconds per test (at most 3600)."
    ),
    memory_mb: int = typer.Option(1024, "--memory-mb", min=64, help="Address-space limit per program (MiB)."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Parallel sandboxes (default: CPU count)."
    ),
    release: str | None = RELEASE,
) -> None:
    """Run every generated program on its problem's tests in the sandbox and print pass@1."""
    from codetune.bench.grade import grade_all
    from codetune.bench.metrics import summarize
    from codetune.bench.problems import load_problems
    from codetune.files import atomic_write_json, refuse_input_as_output

    refuse_input_as_output("--out", out, problems, generations)
    refuse_local_release(release, problems)
    if out.is_dir():
        raise CodetuneError(f"--out {out}: is a folder; give a file path such as {out / 'results.json'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CodetuneError(f"--out {out}: cannot create its folder ({e.strerror})") from None
    gens = _read_generations(generations)
    probs = load_problems(problems, release=release)
    unknown = sorted(set(gens) - {p.question_id for p in probs})
    if unknown:
        raise CodetuneError(
            f"{generations}: question_id {unknown[0]!r} is not in {problems} ({len(unknown)} unknown ids in all)"
        )
    rows = grade_all(probs, gens, compare=compare, timeout=timeout, memory_mb=memory_mb, workers=workers)
    atomic_write_json(out, rows)
    s = summarize(rows, [1])
    print(f"pass@1 {s['pass@1']:.4f} ({s['solved']}/{s['total']} problems solved) -> {out}")
    if len(rows) < len(probs):
        print(
            f"graded {len(rows)} of the {len(probs)} problems in {problems}; the others have no generations"
        )
    outcomes = Counter(_outcome(meta["verdicts"]) for row in rows for meta in row["metadata"])
    print("answers: " + ", ".join(f"{verdict} {n}" for verdict, n in outcomes.most_common()))


def _outcome(verdicts: list[dict]) -> str:
    """An answer's verdict: accepted, or its first failing test's (grading stops there)."""
    return next((v["verdict"] for v in verdicts if v["verdict"] != "accepted"), "accepted")


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
