"""How a program's output is judged against the expected output: LiveCodeBench's rule, exact tokens, JSON results.

Stdlib-only on purpose: the sandbox worker imports this module and compares inside its own process.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

MODES = ("lcb", "exact")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(tok) for tok in line.split()]
    except (InvalidOperation, ValueError):
        return None


def compare_lcb(got: str, expected: str) -> bool:
    """LiveCodeBench: strip the whole output, split lines, strip each line; a differing line may still match
    when both lines are whitespace-separated numbers that are equal as exact Decimals (`10.0` == `10`)."""
    got_lines, exp_lines = _lines(got), _lines(expected)
    if len(got_lines) != len(exp_lines):
        return False
    for g, e in zip(got_lines, exp_lines, strict=True):
        if g == e:
            continue
        gd, ed = _decimals(g), _decimals(e)
        if gd is None or ed is None or gd != ed:
            return False
    return True


def compare_exact(got: str, expected: str) -> bool:
    """Same lines (stripped, as in `lcb`), and within each line the same whitespace-separated tokens as text."""
    got_lines, exp_lines = _lines(got), _lines(expected)
    return len(got_lines) == len(exp_lines) and all(
        g.split() == e.split() for g, e in zip(got_lines, exp_lines, strict=True)
    )


def compare_functional(got_json: str, expected_json: str) -> bool:
    """LeetCode-style result: both JSON texts decode to equal values (tuples were already written as lists)."""
    try:
        return json.loads(got_json) == json.loads(expected_json)
    except (json.JSONDecodeError, TypeError):
        return False


def compare_output(got: str, expected: str, mode: str) -> bool:
    """Compare stdout text under `mode` ('lcb' or 'exact')."""
    if mode == "lcb":
        return compare_lcb(got, expected)
    if mode == "exact":
        return compare_exact(got, expected)
    raise ValueError(f"unknown compare mode {mode!r}; use one of {', '.join(MODES)}")
