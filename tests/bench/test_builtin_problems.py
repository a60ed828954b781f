"""The shipped `builtin:quickstart` set: well-formed, original, and graded correctly by its reference solutions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codetune.bench.grade import grade_all
from codetune.bench.problems import BUILTIN_DIR, load_problems

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "codetune" / "data" / "samples"


@pytest.fixture(scope="module")
def problems():
    return load_problems("builtin:quickstart")


@pytest.fixture(scope="module")
def solutions() -> dict[str, str]:
    return json.loads((BUILTIN_DIR / "quickstart_solutions.json").read_text())


def test_shape(problems) -> None:
    assert len(problems) >= 8
    for p in problems:
        assert p.platform == "codetune" and p.difficulty in {"easy", "medium"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00", p.contest_date)
        assert 1 <= len(p.public_tests) <= 3 and 3 <= len(p.private_tests) <= 6
        assert all(t.testtype == "stdin" for t in p.tests) and p.starter_code == ""
        assert "Sample Input 1" in p.question_content and p.public_tests[0].input in p.question_content
    rows = [json.loads(line) for line in (BUILTIN_DIR / "quickstart.jsonl").read_text().splitlines()]
    assert all(isinstance(r["private_test_cases"], str) and json.loads(r["private_test_cases"]) for r in rows)


def test_titles_do_not_overlap_the_training_samples(problems) -> None:
    titles = set()
    for f in SAMPLES.glob("*.jsonl"):
        titles |= {
            json.loads(line).get("title", "").lower() for line in f.read_text().splitlines() if line.strip()
        }
    assert not titles & {p.question_title.lower() for p in problems}


def test_reference_solutions_pass_and_broken_variants_fail(problems, solutions: dict[str, str]) -> None:
    assert set(solutions) == {p.question_id for p in problems}
    gens = {qid: [code, code + "print(0)\n", code.replace("print(", "print(1 + 0 * 0, ", 1)]
            for qid, code in solutions.items()}  # fmt: skip
    rows = grade_all(problems, gens, timeout=5.0, progress=False)
    for r in rows:
        first = r["metadata"][0]["verdicts"]
        assert r["graded_list"][0], (r["question_id"], first)
        assert len(first) == len(next(p for p in problems if p.question_id == r["question_id"]).tests)
        assert r["graded_list"][1:] == [False, False], r["question_id"]
