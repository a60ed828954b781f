"""Write the report's documents: results.md, answers.md and the self-contained report.html."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from codetune.files import atomic_write_text
from codetune.report import render
from codetune.report.data import DATA_HEADERS, DATA_TEXT, data_rows, shared_sentence

if TYPE_CHECKING:
    from codetune.report.build import Model, Report
    from codetune.report.selection import Choice, Selection

RESULT_HEADERS = ["Model", "Best checkpoint", "Pass@1 [95% CI]", "Solved", "val loss at best"]
PAIR_HEADERS = [
    "Model A",
    "Model B",
    "A better",
    "B better",
    "p",
    "Pass@1 A - B",
    "95% CI (bootstrap)",
    "Verdict",
]


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _interval(bounds: tuple[float, float]) -> str:
    return ", ".join(f"{100 * b:.1f}" for b in bounds)


def _points(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def result_rows(models: list[Model]) -> list[list[str]]:
    return [
        [
            m.name,
            m.checkpoint,
            f"{_pct(m.result.pass_at_1)} [{_interval(m.result.pass_interval)}]",
            f"{m.result.solved}/{m.result.total}",
            "-" if m.val_loss is None else f"{m.val_loss:.4f}",
        ]
        for m in models
    ]


def pair_rows(pairs: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            p["a"],
            p["b"],
            str(p["only_a"]),
            str(p["only_b"]),
            f"{p['p']:.4g}",
            _points(p["diff"]),
            _interval_text(p),
            "significant" if p["significant"] else "not significant",
        ]
        for p in pairs
    ]


def _interval_text(p: dict[str, Any]) -> str:
    if p["only_a"] == p["only_b"] == 0:
        return "n/a (no problem differs)"  # the bootstrap can only give [0, 0]
    return f"[{_points(p['ci95'][0])}, {_points(p['ci95'][1])}]"


SELECTION_HEADERS = [
    "Run",
    "Checkpoints",
    "Best on the benchmark (optimistic)",
    "Leave one problem out [95% CI]",
    "Lowest val loss",
    "Last checkpoint",
    "Optimism",
]
SELECTION_TEXT = (
    "The best checkpoint's Pass@1 is measured on the problems that chose it, so among many checkpoints it is "
    "partly luck. Leave one problem out scores each problem with the checkpoint the same rule (highest Pass@1, "
    "ties by val loss) picks from the other problems: an estimate of what 'sweep and keep the best' delivers on "
    "new problems. Lowest val loss and last checkpoint are chosen without the benchmark. Optimism is the best "
    "checkpoint's Pass@1 minus the leave-one-out estimate."
)


SEED_HEADERS = [
    "Arm",
    "Seeds",
    "Pass@1 per seed",
    "Mean [95% CI]",
    "Seed-to-seed sd",
    "Best on the benchmark, mean (optimistic)",
]
SEED_PAIR_HEADERS = [
    "Arm A",
    "Arm B",
    "Seeds (runs)",
    "Pass@1 A - B",
    "95% CI (two-level bootstrap)",
    "Verdict",
]
SEEDS_TEXT = (
    "Each arm was trained once per seed. A seed's Pass@1 uses honest checkpoint selection (leave one problem out); "
    "an arm's is the mean over its seeds. Intervals resample the problems (one draw for both arms of a pair) and "
    "each arm's seeds, so they include seed-to-seed noise as well as the choice of problems."
)


def seed_rows(groups: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            g["arm"],
            str(len(g["runs"])),
            ", ".join(f"{run.rsplit('-', 1)[-1]} {_pct(v)}" for run, v in g["pass@1_per_seed"].items()),
            f"{_pct(g['pass@1_mean'])} [{_interval(g['pass@1_ci95'])}]",
            f"{100 * g['seed_sd']:.1f} pts",
            _pct(g["best_on_benchmark_mean"]),
        ]
        for g in groups
    ]


def seed_pair_rows(pairs: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            p["a"],
            p["b"],
            " vs ".join(map(str, p["n_seeds"])),
            _points(p["diff"]),
            f"[{_points(p['ci95'][0])}, {_points(p['ci95'][1])}]",
            p["verdict"],
        ]
        for p in pairs
    ]


def _choice(c: Choice | None, problems: int) -> str:
    return "-" if c is None else f"{c.label}: {_pct(c.pass_at_1)} ({c.solved}/{problems})"


def selection_rows(selections: list[Selection]) -> list[list[str]]:
    rows = []
    for s in selections:
        n = len(s.problems)
        loo = f"{_pct(s.loo_pass)} [{_interval(s.loo_interval)}] ({sum(s.loo_outcomes.values())}/{n})"
        rows.append(
            [
                s.run,
                str(s.candidates),
                _choice(s.best, n),
                loo,
                _choice(s.lowest_val, n),
                _choice(s.last, n),
                _points(s.optimism),
            ]
        )
    return rows


def pair_sentence(p: dict[str, Any]) -> str:
    lo, hi = p["ci95"]
    interval = (
        "no interval: no problem differs"
        if p["only_a"] == p["only_b"] == 0
        else f"95% CI {_points(lo)} to {_points(hi)}"
    )
    head = f"{p['a']} vs {p['b']} on {p['problems']} problems: Pass@1 difference {_points(p['diff'])} ({interval}), "
    if p["mcnemar_p"] is not None:
        body = (
            f"{p['only_a']} problems solved only by {p['a']} and {p['only_b']} only by {p['b']}, "
            f"exact McNemar p = {p['p']:.4g}."
        )
    else:
        body = (
            f"{p['only_a']} problems where {p['a']} passed a larger share of its samples and {p['only_b']} where "
            f"{p['b']} did, paired permutation p = {p['p']:.4g}."
        )
    return f"{head}{body} The difference is {p['verdict']}."


def _titles(models: list[Model]) -> dict[str, str]:
    titles: dict[str, str] = {}
    for m in models:
        for q, r in m.result.rows.items():
            titles.setdefault(q, str(r.get("question_title") or ""))
    return titles


def _mark(v: Fraction | None) -> str:
    """✓ / ✗ for a problem all / none of whose samples passed, else the share that passed."""
    if v is None:
        return "-"
    return "✓" if v == 1 else "✗" if v == 0 else f"{float(v):.0%}"


def matrix_rows(models: list[Model], mat: dict[str, dict[str, Fraction | None]]) -> list[list[str]]:
    titles = _titles(models)
    rows = [[q, titles.get(q, ""), *(_mark(mat[q][m.name]) for m in models)] for q in mat]
    shares = [[v for q in mat if (v := mat[q][m.name]) is not None] for m in models]
    if all(v in (0, 1) for col in shares for v in col):
        rows.append(["solved", "", *(str(sum(col)) for col in shares)])
    else:  # what one sample solves on average
        rows.append(["sum of shares", "", *(f"{float(sum(col)):.1f}" for col in shares)])
    return rows


def disagreements(models: list[Model], mat: dict[str, dict[str, Fraction | None]]) -> list[str]:
    return [q for q, row in mat.items() if len({v for v in row.values() if v is not None}) > 1]


def shown_answers(models: list[Model], mat: dict[str, dict[str, Fraction | None]]) -> tuple[str, list[str]]:
    """Which problems' answers to show side by side, and the heading: those where the models disagree, or, when they
    agree on every problem (a small benchmark, a short run), every problem, so the answers can still be read."""
    differing = disagreements(models, mat)
    if differing:
        return f"Answers where the models disagree ({len(differing)} problems)", differing
    return "Answers side by side (every problem: no problem where the models disagree)", list(mat)


def _answer_panels(models: list[Model], q: str) -> list[tuple[str, str]]:
    panels = []
    for m in models:
        if q not in m.result.rows:
            continue
        code, output = m.result.answer(q)
        verdict = "solved" if m.result.outcomes()[q] else "failed"
        panels.append((f"{m.name} ({verdict})", code or output))
    return panels


def _results_markdown(report: Report, title: str, notes: list[str], mat: dict, ref_pass: list) -> str:
    models, pairs = report.models, report.pairs
    md = [f"# {title}\n", *(f"- {n}" for n in notes), ""]
    md += ["## Results\n", render.md_table(RESULT_HEADERS, result_rows(models))]
    if pairs:
        md += ["## Paired significance tests\n", render.md_table(PAIR_HEADERS, pair_rows(pairs))]
        md += [f"- {pair_sentence(p)}" for p in pairs]
        md.append("")
    for section in _sections(report):
        md += _section_markdown(section)
    if ref_pass:
        rows = [[name, step, _pct(p)] for name, pts in ref_pass for step, p in pts]
        md += ["## Reference study\n", render.md_table(["Study model", "Step", "Pass@1"], rows)]
    if mat:
        md += [
            "## Per-problem results\n",
            render.md_table(["Problem", "Title", *(m.name for m in models)], matrix_rows(models, mat)),
        ]
    if report.images:
        md += ["## Figures\n", *(f"- [{name}]({path.name})" for name, path in report.images.items()), ""]
    return "\n".join(md)


@dataclass
class Section:
    """A titled section of text, tables (caption, headers, rows) and sentences, written to both documents."""

    title: str
    text: str
    tables: list[tuple[str, list[str], list[list[str]]]]
    sentences: list[str]


def _sections(report: Report) -> list[Section]:
    """The sections after the results and their paired tests: training data, then selection and seeds."""
    sections = []
    if report.data:
        shared = [shared_sentence(p) for p in report.shared]
        sections.append(
            Section("Training data", DATA_TEXT, [("", DATA_HEADERS, data_rows(report.data))], shared)
        )
    if report.selections:
        tables = [("", SELECTION_HEADERS, selection_rows(report.selections))]
        if report.honest_pairs:
            tables.append(
                ("Paired tests on the leave-one-out outcomes:", PAIR_HEADERS, pair_rows(report.honest_pairs))
            )
        sentences = [pair_sentence(p) for p in report.honest_pairs]
        sections.append(Section("Checkpoint selection", SELECTION_TEXT, tables, sentences))
    if report.seed_groups:
        tables = [("", SEED_HEADERS, seed_rows(report.seed_groups))]
        if report.seed_pairs:
            tables.append(("", SEED_PAIR_HEADERS, seed_pair_rows(report.seed_pairs)))
        sections.append(Section("Seeds", SEEDS_TEXT, tables, []))
    return sections


def _section_markdown(s: Section) -> list[str]:
    md = [f"## {s.title}\n", s.text, ""]
    for caption, headers, rows in s.tables:
        md += [f"{caption}\n"] * bool(caption) + [render.md_table(headers, rows)]
    return md + [f"- {line}" for line in s.sentences] + [""] * bool(s.sentences)


def _section_html(s: Section) -> list[str]:
    h = [f"<h2>{render.esc(s.title)}</h2>", f"<p>{render.inline(s.text)}</p>"]
    for caption, headers, rows in s.tables:
        h += [f"<p>{render.inline(caption)}</p>"] * bool(caption) + [render.html_table(headers, rows)]
    return h + [f"<p>{render.inline(line)}</p>" for line in s.sentences]


def _answers_markdown(models: list[Model], mat: dict, title: str) -> str:
    heading, shown = shown_answers(models, mat)
    md = [f"# {title}: {heading[0].lower()}{heading[1:]}\n"]
    for q in shown:
        md.append(f"## {q}\n")
        for heading, text in _answer_panels(models, q):
            md += [f"### {heading}\n", "````", text, "````", ""]
    return "\n".join(md)


def _html(report: Report, title: str, notes: list[str], mat: dict, ref_pass: list) -> str:
    models, pairs = report.models, report.pairs
    h = [f'<p class="muted">Generated {render.esc(time.strftime("%Y-%m-%d %H:%M"))} by codetune.</p>']
    if notes:
        h.append(
            '<div class="note"><ul>' + "".join(f"<li>{render.inline(n)}</li>" for n in notes) + "</ul></div>"
        )
    h += ["<h2>Results</h2>", render.html_table(RESULT_HEADERS, result_rows(models))]
    if pairs:
        h += ["<h2>Paired significance tests</h2>", render.html_table(PAIR_HEADERS, pair_rows(pairs))]
        for p in pairs:
            cls = "sig" if p["significant"] else "nosig"
            word = "Significant" if p["significant"] else "Not significant"
            h.append(f'<p><span class="{cls}">{word}.</span> {render.esc(pair_sentence(p))}</p>')
        h.append(
            '<p class="muted">p: exact McNemar (one sample per problem: two-sided binomial test on the discordant '
            "problems), or with several samples a paired sign-flip permutation test on per-problem pass rates. "
            "Interval: paired bootstrap over problems, 10,000 resamples, seed 0. Significant means p &lt; 0.05 and the "
            "interval excludes 0.</p>"
        )
    for section in _sections(report):
        h += _section_html(section)
    if ref_pass:
        rows = [[name, step, _pct(p)] for name, pts in ref_pass for step, p in pts]
        h += ["<h2>Reference study</h2>", render.html_table(["Study model", "Step", "Pass@1"], rows)]
    if report.images:
        h.append('<h2>Figures</h2><div class="figs">')
        h += [f"<div>{render.img_tag(path, name)}</div>" for name, path in report.images.items()]
        h.append("</div>")
    if mat:
        rows = matrix_rows(models, mat)
        classes = [["", "", *({"✓": "yes", "✗": "no", "-": "na"}.get(c, "") for c in r[2:])] for r in rows]
        h += [
            "<h2>Per-problem results</h2>",
            render.html_table(["Problem", "Title", *(m.name for m in models)], rows, classes),
        ]
    heading, shown = shown_answers(models, mat)
    if shown:
        h.append(f"<h2>{render.esc(heading)}</h2>")
        titles = _titles(models)
        for q in shown:
            solvers = [m for m, v in mat[q].items() if v]
            label = f"{q} {titles.get(q, '')}: solved by {', '.join(solvers) or 'none'}"
            h.append(render.details(label, render.side_by_side(_answer_panels(models, q))))
    return render.page(title, "\n".join(h))


def write_documents(report: Report, title: str, notes: list[str], mat: dict, ref_pass: list) -> None:
    atomic_write_text(report.out / "results.md", _results_markdown(report, title, notes, mat, ref_pass))
    atomic_write_text(report.out / "answers.md", _answers_markdown(report.models, mat, title))
    atomic_write_text(report.out / "report.html", _html(report, title, notes, mat, ref_pass))
