"""The shipped sample sets: schema, split hygiene, every solution passes its tests, no benchmark overlap."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codetune.data import find_matches, load_rows, read_problems
from codetune.data.config import DataConfig
from codetune.data.contamination import ngrams

SETS = ("deep", "diverse")


def rows_of(name: str) -> list[dict]:
    return load_rows(DataConfig(dataset=f"builtin:{name}"))


def all_rows() -> list[dict]:
    return [r for name in SETS for r in rows_of(name)]


@pytest.mark.parametrize("name", SETS)
def test_schema_and_split_hygiene(name: str) -> None:
    rows = rows_of(name)
    assert len({r["id"] for r in rows}) == len(rows)
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        assert {"id", "problem_id", "split", "input", "output", "solution", "tests"} <= set(r)
        assert r["split"] in {"train", "valid", "test"}
        assert len(r["tests"]) >= 2 and all(set(t) == {"input", "output"} for t in r["tests"])
        assert "```python\n" + r["solution"] + "\n```" in r["output"]
        by_problem[r["problem_id"]].append(r)
    for group in by_problem.values():
        assert len({r["split"] for r in group}) == 1, "a problem's solutions straddle splits"
        assert len({r["input"] for r in group}) == 1
    per_split = defaultdict(set)
    for pid, group in by_problem.items():
        per_split[group[0]["split"]].add(pid)
    assert 2 <= len(per_split["valid"]) <= 4 and 2 <= len(per_split["test"]) <= 4
    counts = [len(g) for g in by_problem.values()]
    if name == "deep":
        assert min(counts) >= 2 and max(counts) <= 3
    else:
        assert max(counts) <= 2 and len(by_problem) > len(rows_of("deep")) // 2


def test_at_least_30_distinct_problems() -> None:
    rows = all_rows()
    assert len({r["problem_id"] for r in rows}) >= 30
    assert len({r["input"] for r in rows}) == len({r["problem_id"] for r in rows})


def _run(code: str, stdin: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else f"<exit {proc.returncode}: {proc.stderr[-200:]}>"


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().splitlines()]


def test_every_shipped_solution_passes_its_tests() -> None:
    jobs = [(r["id"], r["solution"], t) for r in all_rows() for t in r["tests"]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(pool.map(lambda j: _run(j[1], j[2]["input"]), jobs))
    failures = [
        f"{rid}: input {t['input']!r}: expected {t['output']!r}, got {got!r}"
        for (rid, _, t), got in zip(jobs, outputs, strict=True)
        if _lines(got) != _lines(t["output"])
    ]
    assert len(jobs) > 100
    assert failures == []


def test_the_runner_catches_a_wrong_solution() -> None:
    assert _lines(_run("print(int(input()) + 1)", "1\n")) == ["2"]
    assert _lines(_run("print(int(input()) + 2)", "1\n")) != ["2"]


def test_samples_do_not_overlap_livecodebench(lcb41: Path) -> None:
    problems = read_problems(str(lcb41))
    assert len(problems) == 41
    statements = sorted({r["input"] for r in all_rows()})
    assert find_matches(statements, problems, n=13, threshold=0.5) == []
    bench = set().union(*(ngrams(p["question_content"], 8) for p in problems))
    shared = [s for s in statements if ngrams(s, 8) & bench]
    assert shared == [], "sample statements share 8-word runs with LiveCodeBench problems"
