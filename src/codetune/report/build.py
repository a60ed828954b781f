"""Build a report folder from run folders and eval folders: PNGs, results.md, stats.json, report.html."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations
from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError
from codetune.files import atomic_write_json
from codetune.report import plots
from codetune.report.data import data_notes, data_summaries, shared_problems
from codetune.report.document import write_documents
from codetune.report.inputs import (
    EvalResult,
    Run,
    normalize_pass,
    read_eval,
    read_log,
    read_run,
    read_study_summary,
    tests_graded,
)
from codetune.report.seeds import compare_groups, seed_groups
from codetune.report.selection import Selection, honest_pairs, select_runs
from codetune.report.stats import compare_all

COMPARE_MODES = {"lcb": "LiveCodeBench output comparison", "exact": "exact token comparison"}


@dataclass
class Model:
    """One column of the comparison: the base model, a run's best checkpoint, or an extra eval folder."""

    name: str
    result: EvalResult
    checkpoint: str = "-"
    val_loss: float | None = None


@dataclass
class Report:
    out: Path
    models: list[Model]
    pairs: list[dict[str, Any]]
    images: dict[str, Path] = field(default_factory=dict)
    selections: list[Selection] = field(default_factory=list)
    honest_pairs: list[dict[str, Any]] = field(default_factory=list)
    seed_groups: list[dict[str, Any]] = field(default_factory=list)
    seed_pairs: list[dict[str, Any]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)  # training problems each pair of arms shares


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def pct(p: float | None) -> str:
    return "-" if p is None else f"{100 * p:.1f}%"


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name} ({i})", i + 1
    taken.add(out)
    return out


def collect_models(runs: list[Run], evals: list[EvalResult], base: EvalResult | None) -> list[Model]:
    taken: set[str] = set()
    models = []
    if base is not None:
        models.append(Model(_unique("base", taken), base))
    for run in runs:
        if run.best is not None:
            step = run.best_row.get("step") if run.best_row else None
            candidates = sum(1 for r in run.sweep_rows if r.get("label") != "base")
            label = str(run.best_label) + (" (the only one evaluated)" if candidates == 1 else "")
            models.append(Model(_unique(run.name, taken), run.best, label, run.val_loss_at(step)))
    for ev in evals:
        models.append(Model(_unique(ev.name, taken), ev, str(ev.summary.get("adapter") or "-")))
    return models


def problem_ids(models: list[Model]) -> list[str]:
    seen: dict[str, None] = {}
    for m in models:
        seen.update(dict.fromkeys(m.result.rows))
    return list(seen)


def matrix(models: list[Model]) -> dict[str, dict[str, Fraction | None]]:
    """problem -> model -> share of its samples that passed (None when the model was not graded on it)."""
    scores = {m.name: m.result.scores() for m in models}
    return {q: {m.name: scores[m.name].get(q) for m in models} for q in problem_ids(models)}


def matrix_json(mat: dict[str, dict[str, Fraction | None]]) -> dict[str, dict[str, bool | float | None]]:
    """The matrix for stats.json: solved as true/false where a share is 0 or 1, else the share."""
    return {
        q: {name: None if v is None else (bool(v) if v in (0, 1) else float(v)) for name, v in row.items()}
        for q, row in mat.items()
    }


def paired_tests(models: list[Model], mat: dict[str, dict[str, Fraction | None]]) -> list[dict[str, Any]]:
    graded = [
        (m.name, {q: float(v) for q, row in mat.items() if (v := row[m.name]) is not None}) for m in models
    ]
    return compare_all(graded)


def _setup_notes(models: list[Model]) -> list[str]:
    summaries = [m.result.summary for m in models]
    modes = sorted({str(s.get("compare")) for s in summaries if s.get("compare")})
    notes = [
        *_setting_notes(summaries),
        f"Tests graded: {tests_graded(summaries)}.",
        "Pass@1 intervals are 95% Wilson score intervals over the problems graded.",
    ]
    if modes:
        notes.append("Comparison mode: " + ", ".join(f"{m} ({COMPARE_MODES.get(m, m)})" for m in modes) + ".")
    else:
        notes.append("Comparison mode: not stated in the eval summaries.")
    samples = sorted({int(s["n"]) for s in summaries if isinstance(s.get("n"), int)})
    if samples and samples != [1]:
        notes.append(
            "With several samples per problem, the per-problem matrix and the paired tests use each problem's share "
            "of passing samples (paired sign-flip permutation tests instead of McNemar); the answers shown are "
            "first samples."
        )
    notes += _cut_notes(models)
    if sum(m.val_loss is not None for m in models) > 1:
        notes.append(
            "val loss at best: each arm's loss on its own validation split; arms trained on different data are "
            "not compared by it (their Pass@1 on the same problems is the comparison)."
        )
    graded = {m.name: set(m.result.rows) for m in models}
    if len({frozenset(g) for g in graded.values()}) > 1:
        counts = sorted({len(g) for g in graded.values()})
        notes.append(
            f"Models were graded on different problems ({len(set.intersection(*graded.values()))} graded for all, "
            f"counts {counts}); each pair is compared on the problems both were graded on."
        )
        apart = [f"{a} and {b}" for a, b in combinations(graded, 2) if not graded[a] & graded[b]]
        if apart:
            notes.append(
                f"No problem was graded for both of: {'; '.join(apart)}; those pairs are not compared."
            )
    return notes


def _warnings(runs: list[Run], models: list[Model], study_totals: set[int]) -> list[str]:
    """What would make a reader misjudge the results: runs left out of them, models graded by different rules, a
    reference study graded on another problem set."""
    out = []
    for run in runs:
        sweep = run.path / "eval" / "sweep.json"
        if run.best is None:
            why = (
                "its sweep picked no checkpoint" if sweep.is_file() else f"not evaluated ({sweep} is missing)"
            )
            out.append(
                f"{run.name}: {why}, so it has losses here but no Pass@1; `codetune eval --run {run.path}` grades "
                "its checkpoints."
            )
    ours = {m.result.total for m in models}
    if study_totals and ours and study_totals != ours:
        out.append(
            f"The reference study's Pass@1 was measured on its own problems ({', '.join(map(str, sorted(study_totals)))}"
            f" in its summaries), not on the {', '.join(map(str, sorted(ours)))} graded here: its values and its "
            "points in the Pass@1 figure do not compare with these models'."
        )
    modes = sorted({str(s) for m in models if (s := m.result.summary.get("compare"))})
    if len(modes) > 1:
        out.append(
            f"The models were graded with different output comparisons ({', '.join(modes)}): a difference between "
            "them may come from the grading, not the models; grade them all one way (`--compare`)."
        )
    return out


def _setting_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """The problems and the decoding the Pass@1 values rest on, as the eval summaries state them."""

    def setting(s: dict[str, Any]) -> str:
        problems = s["problems"] if isinstance(s.get("problems"), dict) else {}
        t = s.get("temperature")
        decoding = "greedy" if t == 0 else f"sampled at temperature {t}, top_p {s.get('top_p')}"
        ended = " (ending once their program was complete)" if s.get("stop_at_program") else ""
        return (
            f"Problems: {problems.get('source', '?')} ({problems.get('count', '?')} graded). Answers: {decoding}, "
            f"{s.get('n', '?')} per problem, up to {s.get('max_new_tokens', '?')} new tokens{ended}, "
            f"prompt {s.get('prompt_style', '?')}."
        )

    found = list(dict.fromkeys(setting(s) for s in summaries if s))
    if len(found) > 1:
        return ["The models were evaluated in different settings: " + " / ".join(found)]
    return found


def _cut_notes(models: list[Model]) -> list[str]:
    """Answers that reached max_new_tokens unfinished: their programs are usually cut off, so say how many."""
    cut = []
    for m in models:
        s = m.result.summary
        hits, in_code, n = s.get("hit_token_limit"), s.get("cut_in_code"), s.get("n")
        if isinstance(hits, int) and hits > 0:
            answers = m.result.total * (n if isinstance(n, int) else 1)
            inside = (
                f", {in_code} of them before their program was complete" if isinstance(in_code, int) else ""
            )
            cut.append(f"{m.name} {hits} of {answers}{inside}")
    if not cut:
        return []
    limits = sorted({str(m.result.summary.get("max_new_tokens")) for m in models})
    return [
        f"Answers that reached the token limit ({', '.join(limits)}) unfinished: {'; '.join(cut)}. One cut before "
        "its program was complete fails for the limit, not for its idea; a larger max_new_tokens would grade it fairly."
    ]


def _sweep_base(runs: list[Run]) -> float | None:
    """Pass@1 of a sweep row labelled `base`, for runs whose base eval folder lives elsewhere."""
    for run in runs:
        for r in run.sweep_rows:
            if r.get("label") == "base" and (rate := normalize_pass(r.get("pass@1"))) is not None:
                return rate
    return None


def build_report(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    base: str | Path | None = None,
    evals: Sequence[str | Path] | None = None,
    study_logs: Sequence[str | Path] | None = None,
    study_summaries: Sequence[str | Path] | None = None,
    title: str = "codetune report",
) -> Path:
    """Read the inputs, write figures, results.md, answers.md, stats.json and report.html; return report.html.

    The base model comes from `base` (an eval folder) or else from the first run with an `eval/base/` folder.
    """
    out = Path(out_dir)
    given = [Path(p).resolve() for p in run_dirs]
    if len(set(given)) < len(given):
        twice = next(p for p in given if given.count(p) > 1)
        raise CodetuneError(f"{twice}: given twice; a run is compared with others, not with itself")
    runs = [read_run(p) for p in run_dirs]
    extra = [read_eval(p) for p in evals or []]
    base_eval = read_eval(base, name="base") if base else next((r.base for r in runs if r.base), None)
    if not runs and not extra:
        raise CodetuneError("report: give at least one RUN_DIR or --eval folder")
    refs = [
        (f"study {Path(p).stem.replace('_train_val_test_log', '')}", read_log(p)) for p in study_logs or []
    ]
    ref_pass = []
    study_totals: set[int] = set()
    for p in study_summaries or []:
        rows = [r for r in read_study_summary(p) if r["step"] is not None and r["pass@1"] is not None]
        label = rows[0]["type"] if rows and rows[0]["type"] else Path(p).stem
        ref_pass.append((f"study {label}", [(r["step"], r["pass@1"]) for r in rows]))
        study_totals |= {r["total"] for r in rows if isinstance(r["total"], int)}
    out.mkdir(parents=True, exist_ok=True)

    images: dict[str, Path] = {}
    for run in runs:
        if run.log:
            images[f"Loss: {run.name}"] = plots.plot_losses(
                run.log, out / f"loss_{slug(run.name)}.png", f"{run.name}: loss"
            )
    if any(r.log for r in runs) or refs:
        images["Validation loss, all runs"] = plots.plot_val_overlay(
            [(r.name, r.log) for r in runs], out / "val_loss_overlay.png", refs
        )
    base_p = base_eval.pass_at_1 if base_eval else _sweep_base(runs)
    selections = select_runs(runs)
    honest = {sel.run: sel.loo_pass for sel in selections}
    curves = []
    for run in runs:
        pts = [
            (r["step"], rate)
            for r in run.sweep_rows
            if r.get("label") != "base"
            and isinstance(r.get("step"), int)
            and (rate := normalize_pass(r.get("pass@1"))) is not None
        ]
        if pts:
            best = run.best_row.get("step") if run.best_row else None
            best_step = best if isinstance(best, int) else None
            curves.append((run.name, pts, best_step))
            images[f"Pass@1: {run.name}"] = plots.plot_pass_at_1(
                [(run.name, pts, best_step)],
                out / f"pass1_{slug(run.name)}.png",
                f"{run.name}: Pass@1 by checkpoint",
                base_p,
                honest=honest,
            )
    if len(curves) > 1 or (curves and ref_pass):
        images["Pass@1, all runs"] = plots.plot_pass_at_1(
            curves, out / "pass1_all.png", "Pass@1 by checkpoint, all runs", base_p, ref_pass
        )

    models = collect_models(runs, extra, base_eval)
    mat = matrix(models)
    pairs = paired_tests(models, mat)
    warnings = _warnings(runs, models, study_totals)
    notes = warnings + (_setup_notes(models) if models else [])
    if selections:
        notes.append(
            "Each run's best checkpoint was chosen on the problems its Pass@1 is measured on, which flatters it; "
            "'Checkpoint selection' gives estimates that never use a problem both to choose and to score."
        )
    groups = seed_groups(runs, selections)
    data = data_summaries(runs)
    notes += data_notes(data)
    report = Report(
        out=out,
        models=models,
        pairs=pairs,
        images=images,
        selections=selections,
        # With seeds, arms are compared in the Seeds section; run-by-run pairs would grow with the square of the runs.
        honest_pairs=honest_pairs(selections, base_eval) if selections and not groups else [],
        seed_groups=[g.to_json() for g in groups],
        seed_pairs=compare_groups(groups, base_eval) if groups else [],
        data=data,
        shared=shared_problems(runs),
    )
    stats = {
        "title": title,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "notes": notes,
        "warnings": warnings,
        "models": [
            {
                "name": m.name,
                "eval_dir": str(m.result.path),
                "checkpoint": m.checkpoint,
                "pass@1": m.result.pass_at_1,
                "pass@1_ci95": list(m.result.pass_interval),
                "solved": m.result.solved,
                "total": m.result.total,
                "hit_token_limit": m.result.summary.get("hit_token_limit"),
                "cut_in_code": m.result.summary.get("cut_in_code"),
                "val_loss": m.val_loss,
            }
            for m in models
        ],
        "pairs": pairs,
        "matrix": matrix_json(mat),
        "reference_pass@1": {name: pts for name, pts in ref_pass},
        "data": {"arms": data, "shared_train_problems": report.shared},
        "selection": {
            "runs": [sel.to_json() for sel in selections],
            "pairs_leave_one_out": report.honest_pairs,
        },
        "seeds": {
            "arms": report.seed_groups,
            "pairs": report.seed_pairs,
            "bootstrap": "problems resampled (one draw for both sides), seeds resampled within each arm, 10,000 draws",
        },
    }
    atomic_write_json(out / "stats.json", stats)
    write_documents(report, title, notes, mat, ref_pass)
    return out / "report.html"
