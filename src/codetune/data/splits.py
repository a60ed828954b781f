"""Train/valid/test assignment: a given split column, or a seeded split grouped by problem; leak detection."""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections import defaultdict

SPLITS = ("train", "valid", "test")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize(statement: str) -> str:
    """Lower-case words and numbers only: two copies of one problem with different spacing compare equal."""
    text = unicodedata.normalize("NFKC", statement).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def statement_key(statement: str) -> str:
    return hashlib.sha256(normalize(statement).encode()).hexdigest()[:16]


def group_rows(problem_ids: list[str | None], statements: list[str]) -> list[int]:
    """Group id per row: rows sharing a problem id *or* a normalized statement land in one group."""
    parent = list(range(len(statements)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_by_key: dict[tuple[str, str], int] = {}
    for i, (pid, text) in enumerate(zip(problem_ids, statements, strict=True)):
        keys = [("s", normalize(text))] + ([("p", pid)] if pid is not None else [])
        for key in keys:
            j = first_by_key.setdefault(key, i)
            parent[find(i)] = find(j)
    return [find(i) for i in range(len(statements))]


def seeded_split(groups: list[int], valid_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """Assign whole groups (problems) to splits: shuffle the groups with `seed`, then cut test, valid, train."""
    unique = sorted(set(groups))
    random.Random(seed).shuffle(unique)
    n = len(unique)

    def count(fraction: float) -> int:
        return max(1, round(fraction * n)) if fraction > 0 and n >= 3 else 0

    n_test, n_valid = count(test_fraction), count(valid_fraction)
    where: dict[int, str] = {}
    for k, g in enumerate(unique):
        where[g] = "test" if k < n_test else "valid" if k < n_test + n_valid else "train"
    return [where[g] for g in groups]


def find_leaks(statements: list[str], splits: list[str], problem_ids: list[str]) -> list[dict]:
    """Problems (by normalized statement) present in train and in valid or test."""
    by_key: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, (text, split) in enumerate(zip(statements, splits, strict=True)):
        by_key[normalize(text)][split].append(i)
    leaks = []
    for rows_by_split in by_key.values():
        if "train" in rows_by_split and len(rows_by_split) > 1:
            first = rows_by_split["train"][0]
            leaks.append(
                {
                    "problem_id": problem_ids[first],
                    "splits": sorted(rows_by_split, key=SPLITS.index),
                    "rows": {
                        s: rows
                        for s, rows in sorted(rows_by_split.items(), key=lambda kv: SPLITS.index(kv[0]))
                    },
                    "statement": " ".join(statements[first].split())[:80],
                }
            )
    return leaks
