"""`codetune report` and `codetune plot` on fixture runs and the study's own logs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import ARMS, BASE, PROBLEMS, SHARED, write_eval

from codetune.bench.metrics import wilson_interval
from codetune.report.stats import compare_pair

PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codetune.cli", *map(str, args)], capture_output=True, text=True
    )


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG, path
    assert len(data) > 5_000, (path, len(data))


@pytest.fixture
def report_dir(fixture_runs: dict[str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "report"
    r = cli(
        "report",
        fixture_runs["deep"],
        fixture_runs["diverse"],
        "--base",
        fixture_runs["base"],
        "--out",
        out,
        "--title",
        "Deep vs Diverse",
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    return out


def test_report_writes_real_images(report_dir: Path) -> None:
    names = {p.name for p in report_dir.glob("*.png")}
    expected = {
        "loss_deep.png",
        "loss_diverse.png",
        "val_loss_overlay.png",
        "pass1_deep.png",
        "pass1_diverse.png",
        "pass1_all.png",
    }
    assert expected <= names
    for name in expected:
        assert_png(report_dir / name)


def md_section(text: str, heading: str) -> list[list[str]]:
    """Rows of the first markdown table under `## heading`."""
    part = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in part.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def test_results_table_matches_eval_files(report_dir: Path, fixture_runs: dict[str, Path]) -> None:
    text = (report_dir / "results.md").read_text()
    rows = {r[0]: r for r in md_section(text, "Results")}
    assert set(rows) == {"base", "deep", "diverse"}
    for name in ("base", "deep", "diverse"):
        folder = fixture_runs["base"] if name == "base" else fixture_runs[name] / "eval" / "checkpoint-20"
        summary = json.loads((folder / "summary.json").read_text())
        solved = sum(r["graded_list"][0] for r in json.loads((folder / "eval_all.json").read_text()))
        lo, hi = wilson_interval(solved, len(PROBLEMS))
        assert rows[name][2] == f"{100 * summary['pass@1']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
        assert rows[name][3] == f"{solved}/{len(PROBLEMS)}" == f"{summary['solved']}/{summary['total']}"
    assert rows["deep"][1] == "checkpoint-20" and rows["deep"][4] == "0.8200"
    assert rows["diverse"][4] == "0.8800" and rows["base"][1] == "-"
    assert "Tests graded: public tests only." in text
    assert "95% Wilson score intervals" in text
    assert "Comparison mode: lcb" in text


def test_matrix_and_paired_tests(report_dir: Path) -> None:
    stats = json.loads((report_dir / "stats.json").read_text())
    outcomes = {"base": BASE, "deep": ARMS["deep"][20], "diverse": ARMS["diverse"][20]}
    for q, row in stats["matrix"].items():
        i = PROBLEMS.index(q)
        assert row == {m: bool(v[i]) for m, v in outcomes.items()}
    pairs = {(p["a"], p["b"]): p for p in stats["pairs"]}
    assert set(pairs) == {("base", "deep"), ("base", "diverse"), ("deep", "diverse")}
    # base vs deep: deep alone solves abc91_a and abc94_a, base alone nothing -> b=0, c=2, p=0.5.
    p = pairs[("base", "deep")]
    assert (p["only_a"], p["only_b"], p["mcnemar_p"]) == (0, 2, 0.5)
    assert p["diff"] == pytest.approx(-2 / 6) and not p["significant"]
    for (a, b), p in pairs.items():
        ref = compare_pair(a, [bool(x) for x in outcomes[a]], b, [bool(x) for x in outcomes[b]])
        assert p["mcnemar_p"] == ref["mcnemar_p"] and p["ci95"] == ref["ci95"]
    text = (report_dir / "results.md").read_text()
    assert text.count("not significant") >= 3
    matrix = {r[0]: r for r in md_section(text, "Per-problem results")}
    assert matrix["abc91_a"][2:] == ["✗", "✓", "✗"] and matrix["solved"][2:] == ["2", "4", "3"]


def test_html_is_self_contained_and_escaped(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    assert "<script" not in html and "&lt;script&gt;" in html
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(?:src|href)="(?:https?:|//)', html)
    assert "<details>" in html and "Not significant" in html
    # The side-by-side answers cover exactly the problems where the three models disagree.
    disagree = [
        q for i, q in enumerate(PROBLEMS) if len({BASE[i], ARMS["deep"][20][i], ARMS["diverse"][20][i]}) > 1
    ]
    assert html.count("<details>") == len(disagree)


def test_report_with_study_references(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    logs = [SHARED / "data" / "study" / f"{arm}_train_val_test_log.json" for arm in ("deep", "diverse")]
    summaries = [SHARED / "data" / "study" / f"{arm}_summary.json" for arm in ("deep", "diverse")]
    if not all(p.is_file() for p in logs + summaries):
        pytest.skip("../shared/data/study is not present")
    out = tmp_path / "r"
    args = ["report", fixture_runs["deep"], "--out", out]
    for p in logs:
        args += ["--study-log", p]
    for p in summaries:
        args += ["--study-summary", p]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["reference_pass@1"]["study deep_instruction"][0] == [220, pytest.approx(14 / 41)]
    assert [m["name"] for m in stats["models"]] == ["base", "deep"]  # base found in the run's eval/base
    rows = md_section((out / "results.md").read_text(), "Reference study")
    assert ["study diverse_instruction", "540", "29.3%"] in rows
    assert_png(out / "pass1_all.png")


def test_plot_study_log(tmp_path: Path) -> None:
    log = SHARED / "data" / "study" / "deep_train_val_test_log.json"
    if not log.is_file():
        pytest.skip("../shared/data/study is not present")
    out = tmp_path / "deep.png"
    r = cli("plot", log, "--out", out, "--title", "Deep (study)")
    assert r.returncode == 0, r.stderr
    assert "15 steps" in r.stdout
    assert_png(out)


def test_plot_codetune_log(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    r = cli("plot", fixture_runs["deep"] / "log.json", "--out", tmp_path / "x.png")
    assert r.returncode == 0, r.stderr
    assert_png(tmp_path / "x.png")


def test_user_errors_are_one_line(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    r = cli("report", fixture_runs["deep"], "--base", tmp_path / "missing", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "missing" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"train_loss": 1.0}]')
    r = cli("plot", bad, "--out", tmp_path / "o.png")
    assert r.returncode == 2 and "entry 0" in r.stderr and "step" in r.stderr
    (fixture_runs["diverse"] / "eval" / "checkpoint-20" / "eval_all.json").unlink()
    r = cli("report", fixture_runs["diverse"], "--out", tmp_path / "o")
    assert r.returncode == 2 and "eval_all.json" in r.stderr
    r = cli("plot", fixture_runs["deep"] / "metrics.jsonl", "--out", tmp_path / "o.png")
    assert r.returncode == 2 and "plot reads a log.json" in r.stderr, r.stderr


def test_runs_left_out_and_mixed_grading_are_warned_about(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    unevaluated = tmp_path / "unevaluated"
    unevaluated.mkdir()
    shutil.copy(fixture_runs["deep"] / "log.json", unevaluated / "log.json")
    exact = tmp_path / "exact"
    shutil.copytree(fixture_runs["base"], exact)
    summary = json.loads((exact / "summary.json").read_text())
    (exact / "summary.json").write_text(json.dumps({**summary, "compare": "exact", "label": "exact"}))
    r = cli("report", fixture_runs["deep"], unevaluated, "--eval", exact, "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    warnings = json.loads((tmp_path / "r" / "stats.json").read_text())["warnings"]
    assert len(warnings) == 2
    assert warnings[0].startswith("unevaluated: not evaluated") and "codetune eval --run" in warnings[0]
    assert "different output comparisons (exact, lcb)" in warnings[1]
    assert [line for line in r.stdout.splitlines() if line.startswith("warning: ")] == [
        f"warning: {w}" for w in warnings
    ]
    assert all(w in (tmp_path / "r" / "results.md").read_text() for w in warnings)


def test_report_from_eval_folders_only(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    from codetune.report import build_report

    a = fixture_runs["deep"] / "eval" / "checkpoint-30"
    b = fixture_runs["diverse"] / "eval" / "checkpoint-10"
    html = build_report([], tmp_path / "r", evals=[a, b], base=fixture_runs["base"])
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [(m["name"], m["solved"]) for m in stats["models"]] == [
        ("base", 2),
        ("checkpoint-30", 3),
        ("checkpoint-10", 1),
    ]
    pair = next(p for p in stats["pairs"] if p["a"] == "checkpoint-30")
    assert (pair["only_a"], pair["only_b"]) == (3, 1) and pair["diff"] == pytest.approx(2 / 6)
    assert not list((tmp_path / "r").glob("*.png"))  # no logs, no sweeps: no figures, but a complete page
    assert "<table>" in html.read_text()


def test_several_samples_are_compared_on_pass_rates(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    """With 5 samples per problem the matrix shows shares and the pairs use every sample: here both models' first
    samples agree everywhere (McNemar on them would say p = 1), but A passes 4 of 5 where B passes 1 of 5."""
    from codetune.report import build_report

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, label in ((a, "A"), (b, "B")):
        write_eval(folder, label, [1] * len(PROBLEMS), None)
        rows = json.loads((folder / "eval_all.json").read_text())
        for r in rows:
            r["graded_list"] = [True] + [label == "A"] * 3 + [False]
            r["pass@1"] = sum(r["graded_list"]) / 5
            r["code_list"] *= 5
            r["output_list"] *= 5
        (folder / "eval_all.json").write_text(json.dumps(rows))
        summary = json.loads((folder / "summary.json").read_text())
        summary |= {"n": 5, "temperature": 0.2, "pass@1": rows[0]["pass@1"], "solved": len(PROBLEMS)}
        (folder / "summary.json").write_text(json.dumps(summary))
    build_report([], tmp_path / "r", evals=[a, b])
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    (pair,) = stats["pairs"]
    assert pair["test"].startswith("paired sign-flip permutation") and pair["mcnemar_p"] is None
    assert (pair["only_a"], pair["only_b"]) == (6, 0) and pair["diff"] == pytest.approx(0.6)
    assert pair["p"] == pytest.approx(2 / 64)  # 6 equal differences: 2 of the 64 sign patterns reach |sum|
    assert stats["matrix"]["abc90_a"] == {"A": pytest.approx(0.8), "B": pytest.approx(0.2)}
    text = (tmp_path / "r" / "results.md").read_text()
    assert "share of passing samples" in text and "paired permutation p = 0.03125" in text
    matrix = {r[0]: r for r in md_section(text, "Per-problem results")}
    assert matrix["abc90_a"][2:] == ["80%", "20%"] and matrix["sum of shares"][2:] == ["4.8", "1.2"]


def test_models_graded_on_other_problems_are_paired_only_where_they_overlap(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    """Same counts, other ids: before, the report tested a pair on 0 shared problems (p = 1) and said nothing."""
    from codetune.report import build_report

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_eval(a, "A", [1, 1, 1, 1, 0, 0], None)
    write_eval(b, "B", [0, 0, 0, 0, 0, 0], None)
    write_eval(c, "C", [1, 0, 1, 0, 1, 0], None)
    for folder, prefix in ((b, "arc"), (c, None)):
        rows = json.loads((folder / "eval_all.json").read_text())
        rows = (
            rows[:5]
            if prefix is None
            else [{**r, "question_id": f"{prefix}_{r['question_id']}"} for r in rows]
        )
        (folder / "eval_all.json").write_text(json.dumps(rows))
    summary = json.loads((c / "summary.json").read_text())
    (c / "summary.json").write_text(json.dumps({**summary, "solved": 3, "total": 5, "pass@1": 0.6}))
    build_report([], tmp_path / "r", evals=[a, b, c])
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [(p["a"], p["b"], p["problems"]) for p in stats["pairs"]] == [("A", "C", 5)]
    text = (tmp_path / "r" / "results.md").read_text()
    assert "Models were graded on different problems (0 graded for all, counts [5, 6])" in text
    assert "No problem was graded for both of: A and B; B and C; those pairs are not compared." in text


def test_an_eval_folder_whose_files_disagree_is_refused(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    base = fixture_runs["base"]
    rows = json.loads((base / "eval_all.json").read_text())
    for bad, message in (
        ([], "no graded problems"),
        (rows[:3], "3 graded problems, but summary.json says total 6"),
        ([*rows, rows[0]], "entry 6: question_id 'abc90_a' appears twice"),
    ):
        (base / "eval_all.json").write_text(json.dumps(bad))
        r = cli("report", fixture_runs["deep"], "--base", base, "--out", tmp_path / "o")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.stderr.startswith(f"error: {base / 'eval_all.json'}: ") and message in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_answers_cut_at_the_token_limit_are_counted_in_the_notes(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    from codetune.report import build_report

    a, b = tmp_path / "a", tmp_path / "b"
    write_eval(a, "A", [1, 0, 0, 1, 0, 0], None)
    write_eval(b, "B", [1, 0, 0, 1, 0, 0], None)
    for folder, hits in ((a, 4), (b, 0)):
        summary = json.loads((folder / "summary.json").read_text())
        (folder / "summary.json").write_text(
            json.dumps({**summary, "hit_token_limit": hits, "cut_in_code": hits // 2})
        )
    build_report([], tmp_path / "r", evals=[a, b])
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [(m["hit_token_limit"], m["cut_in_code"]) for m in stats["models"]] == [(4, 2), (0, 0)]
    notes = [n for n in stats["notes"] if n.startswith("Answers that reached the token limit")]
    assert len(notes) == 1 and notes[0].startswith(
        "Answers that reached the token limit (64) unfinished: A 4 of 6, 2 of them before their program was complete. "
    )
    assert notes[0] in (tmp_path / "r" / "results.md").read_text()
    (b / "summary.json").write_text(
        json.dumps({**json.loads((b / "summary.json").read_text()), "hit_token_limit": None})
    )
    (a / "summary.json").write_text(
        json.dumps({**json.loads((a / "summary.json").read_text()), "hit_token_limit": 0})
    )
    build_report([], tmp_path / "r2", evals=[a, b])
    assert not any(
        "token limit" in n for n in json.loads((tmp_path / "r2" / "stats.json").read_text())["notes"]
    )


def test_one_evaluated_checkpoint_and_no_disagreement_are_said_plainly(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    from codetune.report import build_report

    for arm in ("deep", "diverse"):
        sweep_path = fixture_runs[arm] / "eval" / "sweep.json"
        sweep = json.loads(sweep_path.read_text())
        rows = [r for r in sweep["rows"] if r["label"] in ("base", "checkpoint-30")]
        sweep_path.write_text(json.dumps({**sweep, "rows": rows, "best": "checkpoint-30"}))
        write_eval(fixture_runs[arm] / "eval" / "checkpoint-30", "checkpoint-30", BASE, 30, "checkpoint-30")
    build_report([fixture_runs["deep"], fixture_runs["diverse"]], tmp_path / "r", base=fixture_runs["base"])
    text = (tmp_path / "r" / "results.md").read_text()
    assert [r[1] for r in md_section(text, "Results")][1:] == ["checkpoint-30 (the only one evaluated)"] * 2
    assert "each arm's loss on its own validation split" in text
    answers = (tmp_path / "r" / "answers.md").read_text()
    assert "no problem where the models disagree" in answers.splitlines()[0]
    # every problem's answers are still shown side by side, one panel per model
    assert re.findall(r"^## (\S+)$", answers, flags=re.M) == PROBLEMS
    assert answers.count("\n### ") == 3 * len(PROBLEMS)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Answers side by side (every problem" in html and html.count("<details>") == len(PROBLEMS)


def test_notes_state_the_problems_and_decoding(fixture_runs: dict[str, Path], tmp_path: Path) -> None:
    from codetune.report import build_report

    a, b = tmp_path / "a", tmp_path / "b"
    write_eval(a, "A", BASE, None)
    write_eval(b, "B", BASE, None)
    build_report([], tmp_path / "r", evals=[a, b])
    notes = json.loads((tmp_path / "r" / "stats.json").read_text())["notes"]
    assert notes[0] == (
        "Problems: fixture.jsonl (6 graded). Answers: greedy, 1 per problem, up to 64 new tokens, prompt lcb."
    )
    summary = json.loads((b / "summary.json").read_text())
    (b / "summary.json").write_text(json.dumps({**summary, "temperature": 0.2, "top_p": 0.95, "n": 5}))
    build_report([], tmp_path / "r2", evals=[a, b])
    notes = json.loads((tmp_path / "r2" / "stats.json").read_text())["notes"]
    assert notes[0].startswith("The models were evaluated in different settings: Problems: fixture.jsonl")
    assert "sampled at temperature 0.2, top_p 0.95, 5 per problem" in notes[0]


def test_notes_say_when_answers_ended_at_their_program(tmp_path: Path) -> None:
    from codetune.report import build_report

    a = tmp_path / "a"
    write_eval(a, "A", BASE, None)
    summary = json.loads((a / "summary.json").read_text())
    (a / "summary.json").write_text(json.dumps({**summary, "stop_at_program": True}))
    build_report([], tmp_path / "r", evals=[a])
    notes = json.loads((tmp_path / "r" / "stats.json").read_text())["notes"]
    assert "up to 64 new tokens (ending once their program was complete), prompt lcb." in notes[0]


def test_the_base_folder_of_a_run_is_taken_for_its_eval_folder(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    from codetune.report import build_report

    base = tmp_path / "exp" / "base"  # `codetune run` writes base/eval/
    shutil.copytree(fixture_runs["base"], base / "eval")
    build_report([fixture_runs["deep"]], tmp_path / "r", base=base)
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [(m["name"], m["solved"]) for m in stats["models"]][0] == ("base", sum(BASE))


def test_arms_of_an_experiment_find_its_base_and_the_folder_itself_is_explained(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    from codetune.errors import CodetuneError
    from codetune.report import build_report

    exp = tmp_path / "exp"
    shutil.copytree(fixture_runs["deep"], exp / "arms" / "deep")
    shutil.rmtree(exp / "arms" / "deep" / "eval" / "base", ignore_errors=True)
    shutil.copytree(fixture_runs["base"], exp / "base" / "eval")  # where `codetune run` writes it
    build_report([exp / "arms" / "deep"], tmp_path / "r")
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert [m["name"] for m in stats["models"]][0] == "base"
    with pytest.raises(CodetuneError, match=r"exp: an experiment folder; give its runs \(.*arms/\*\)"):
        build_report([exp], tmp_path / "r2")
    with pytest.raises(CodetuneError, match="given twice"):
        build_report([exp / "arms" / "deep", exp / "arms" / "deep"], tmp_path / "r3")


def test_a_reference_study_on_other_problems_is_warned_about(
    fixture_runs: dict[str, Path], tmp_path: Path
) -> None:
    summary = tmp_path / "deep_summary.json"
    result = {"model_name": "deep-step-220", "model_type": "deep_instruction", "pass_at_1": 14 / 41}
    summary.write_text(json.dumps({"results": [{**result, "stats": {"passed": 14, "total": 41}}]}))
    r = cli("report", fixture_runs["deep"], "--study-summary", summary, "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    warnings = json.loads((tmp_path / "r" / "stats.json").read_text())["warnings"]
    assert warnings == [
        "The reference study's Pass@1 was measured on its own problems (41 in its summaries), not on the 6 graded "
        "here: its values and its points in the Pass@1 figure do not compare with these models'."
    ]
    summary.write_text(json.dumps({"results": [{**result, "stats": {"passed": 2, "total": 6}}]}))
    r = cli("report", fixture_runs["deep"], "--study-summary", summary, "--out", tmp_path / "r2")
    assert json.loads((tmp_path / "r2" / "stats.json").read_text())["warnings"] == []
