"""Grading semantics: LiveCodeBench comparison, exact mode, functional tests, verdicts, rows, the `grade` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codetune.bench.compare import compare_exact, compare_lcb
from codetune.bench.grade import grade_all
from codetune.bench.problems import Problem, Test
from codetune.errors import CodetuneError


def problem(qid: str, tests: list[tuple[str, str]], testtype: str = "stdin", **kw) -> Problem:
    ts = tuple(Test(i, o, testtype) for i, o in tests)
    fields = dict(question_id=qid, question_title=qid, question_content="", platform="atcoder", contest_id="c",
                  contest_date="2025-01-01T00:00:00", starter_code="", difficulty="easy", public_tests=ts[:1],
                  private_tests=ts[1:], metadata={})  # fmt: skip
    fields.update(kw)
    return Problem(**fields)


@pytest.mark.parametrize(
    "got,expected,lcb,exact",
    [
        ("3\n", "3\n", True, True),
        ("1 2 3   \n\n\n", "1 2 3\n", True, True),  # trailing spaces and blank lines
        ("  1 2\n3\n", "1 2\n3", True, True),
        ("1  2\n", "1 2\n", True, True),  # inner whitespace: equal tokens
        ("10.0\n", "10\n", True, False),
        ("1.666667\n", "1.66666667\n", False, False),
        ("1e1\n", "10\n", True, False),
        ("1\n2\n", "1\n", False, False),  # extra line
        ("1\n", "1\n2\n", False, False),  # missing line
        ("1\n\n2\n", "1\n2\n", False, False),  # a blank line inside counts
        ("Yes\n", "yes\n", False, False),
        ("", "\n", True, True),
    ],
)
def test_comparison_rules(got: str, expected: str, lcb: bool, exact: bool) -> None:
    assert compare_lcb(got, expected) is lcb
    assert compare_exact(got, expected) is exact


@pytest.fixture(scope="module")
def graded() -> dict:
    """One grade_all call over many (problem, code) pairs; tests below read their rows."""
    probs = [
        problem("add", [("1 2\n", "3\n"), ("5 5\n", "10\n"), ("0 0\n", "0\n")]),
        problem("float", [("\n", "10\n")]),
        problem("fn", [("[1, 2, 3]\n2", "[0, 1]"), ("[4]\n4", "[0]")], testtype="functional",
                starter_code="class Solution:\n    def find(self, nums, t):\n", metadata={"func_name": "find"}),
        problem("none", [("", "1\n")]),
    ]  # fmt: skip
    add = "a, b = map(int, input().split())\nprint(a + b)\n"
    gens = {
        "add": [
            add,
            "a, b = map(int, input().split())\nprint(a + b + (a == 5))\n",  # fails the 2nd test
            "import sys\nprint(sum(map(int, sys.stdin.read().split())), '  ')\nprint()\n",
            "raise SystemExit(3)\n",
            "print(undefined_name)\n",
            "while True:\n    pass\n",
            "x = bytearray(8 * 2**30)\n",
            "def broken(:\n",
        ],
        "float": ["print(10.0)\n", "print('1e1')\n"],
        "fn": [
            "class Solution:\n    def find(self, nums: List[int], t: int) -> List[int]:\n"
            "        return tuple(i for i, x in enumerate(nums) if x <= t)\n",
            "class Solution:\n    def find(self, nums, t):\n        return [0]\n",
            "class Solution:\n    def find(self, nums, t):\n        return {1, 2}\n",
        ],
    }
    lcb = grade_all(probs, gens, timeout=1.0, memory_mb=512, workers=2, progress=False)
    exact = grade_all(probs[1:2], {"float": gens["float"]}, compare="exact", timeout=1.0, progress=False)
    return {"lcb": {r["question_id"]: r for r in lcb}, "exact": {r["question_id"]: r for r in exact}}


def verdicts(row: dict, i: int) -> list[str]:
    return [v["verdict"] for v in row["metadata"][i]["verdicts"]]


def test_rows_have_eval_all_form(graded: dict) -> None:
    rows = graded["lcb"]
    assert set(rows) == {"add", "float", "fn"}  # "none" has no generations: no row
    r = rows["add"]
    assert {"question_id", "question_title", "platform", "difficulty", "contest_date", "code_list", "graded_list",
            "pass@1", "metadata"} <= set(r)  # fmt: skip
    assert r["graded_list"] == [True, False, True, False, False, False, False, False]
    assert r["pass@1"] == pytest.approx(2 / 8)
    v = r["metadata"][0]["verdicts"][0]
    assert set(v) == {"verdict", "time", "stderr", "expected", "got"} and r["metadata"][0]["compare"] == "lcb"


def test_verdicts_stop_at_first_failure(graded: dict) -> None:
    r = graded["lcb"]["add"]
    assert verdicts(r, 0) == ["accepted"] * 3
    assert verdicts(r, 1) == ["accepted", "wrong_answer"]
    wa = r["metadata"][1]["verdicts"][1]
    assert wa["expected"] == "10\n" and wa["got"] == "11\n"
    assert verdicts(r, 3) == ["runtime_error"]
    assert verdicts(r, 4) == ["runtime_error"] and "NameError" in r["metadata"][4]["verdicts"][0]["stderr"]
    assert verdicts(r, 5) == ["time_limit"] and r["metadata"][5]["verdicts"][0]["time"] >= 1.0
    assert verdicts(r, 6) == ["memory_limit"]
    assert verdicts(r, 7) == ["runtime_error"] and "SyntaxError" in r["metadata"][7]["verdicts"][0]["stderr"]


def test_numbers_equal_as_decimals_only_under_lcb(graded: dict) -> None:
    assert graded["lcb"]["float"]["graded_list"] == [True, True]
    assert graded["exact"]["float"]["graded_list"] == [False, False]


def test_functional_tests_call_the_solution_method(graded: dict) -> None:
    r = graded["lcb"]["fn"]
    assert r["graded_list"] == [True, False, False]
    assert verdicts(r, 1) == ["wrong_answer"] and r["metadata"][1]["verdicts"][0]["got"] == "[0]"
    assert verdicts(r, 2) == ["wrong_answer"]


def test_unknown_ids_and_modes_are_user_errors() -> None:
    p = problem("a", [("", "1\n")])
    with pytest.raises(CodetuneError, match="question ids are not in the problem set \\(first: 'zz'\\)"):
        grade_all([p], {"zz": ["print(1)"]}, progress=False)
    with pytest.raises(CodetuneError, match="compare: unknown mode 'fuzzy'"):
        grade_all([p], {"a": ["print(1)"]}, compare="fuzzy", progress=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codetune.cli", *args], capture_output=True, text=True)


def test_grade_command(tmp_path: Path) -> None:
    sols = json.loads(
        (Path(__file__).parents[2] / "src/codetune/bench/builtin/quickstart_solutions.json").read_text()
    )
    qid = "qs_snake_fill"
    gens = tmp_path / "g.json"
    gens.write_text(json.dumps([{"question_id": qid, "code_list": [sols[qid], "print(1)"]}]))
    out = tmp_path / "r.json"
    r = run_cli("grade", "--problems", "builtin:quickstart", "--generations", str(gens), "--out", str(out),
                "--timeout", "2", "--workers", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "pass@1 0.5000" in r.stdout
    assert "graded 1 of the 10 problems in builtin:quickstart; the others have no generations" in r.stdout
    assert "answers: accepted 1, wrong_answer 1" in r.stdout
    rows = json.loads(out.read_text())
    assert [row["question_id"] for row in rows] == [qid] and rows[0]["graded_list"] == [True, False]

    gens.write_text(json.dumps([{"question_id": "nope", "code_list": ["print(1)"]}]))
    r = run_cli("grade", "--problems", "builtin:quickstart", "--generations", str(gens), "--out", str(out))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert (
        r.returncode == 2
        and len(lines) == 1
        and "question_id 'nope' is not in builtin:quickstart" in lines[0]
    )
