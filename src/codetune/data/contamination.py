"""Benchmark contamination: word n-gram overlap of training statements with LiveCodeBench problems."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from codetune.data.splits import normalize
from codetune.errors import CodetuneError
from codetune.files import iter_jsonl


def benchmark_path(spec: str) -> Path:
    """A LiveCodeBench JSONL path, or `builtin:quickstart` (the bench stage's shipped problem set)."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        path = Path(__file__).resolve().parents[1] / "bench" / "builtin" / f"{name}.jsonl"
        if not path.is_file():
            raise CodetuneError(f"{spec}: no such shipped problem set ({path} is missing)")
        return path
    return Path(spec).expanduser()


def read_problems(spec: str) -> list[dict[str, str]]:
    """`[{question_id, question_content}]` from a LiveCodeBench JSONL (read with plain JSON)."""
    path = benchmark_path(spec)
    problems = []
    for i, row in enumerate(iter_jsonl(path)):
        qid, content = row.get("question_id"), row.get("question_content")
        if not isinstance(qid, str) or not isinstance(content, str):
            raise CodetuneError(
                f"{path}:{i + 1}: expected string fields 'question_id' and 'question_content'"
            )
        problems.append({"question_id": qid, "question_content": content})
    if not problems:
        raise CodetuneError(f"{path}: no problems (the file is empty)")
    return problems


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of the normalized text; a text shorter than n words counts as one n-gram."""
    words = normalize(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def find_matches(
    statements: list[str], problems: list[dict[str, str]], *, n: int = 13, threshold: float = 0.5
) -> list[dict[str, Any]]:
    """Rows whose statement shares at least `threshold` of the shorter side's n-grams with a benchmark problem.

    Returns `[{row, question_id, overlap}]`, one entry per (row, problem) pair, best overlap first per row.
    """
    bench = [ngrams(p["question_content"], n) for p in problems]
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for q, grams in enumerate(bench):
        for g in grams:
            index[g].append(q)
    matches: list[dict[str, Any]] = []
    for row, text in enumerate(statements):
        grams = ngrams(text, n)
        shared: dict[int, int] = defaultdict(int)
        for g in grams:
            for q in index.get(g, ()):
                shared[q] += 1
        hits: list[dict[str, Any]] = []
        for q, k in shared.items():
            overlap = k / min(len(grams), len(bench[q]))
            if overlap >= threshold:
                hits.append(
                    {"row": row, "question_id": problems[q]["question_id"], "overlap": round(overlap, 4)}
                )
        matches.extend(sorted(hits, key=lambda h: -h["overlap"]))
    return matches
