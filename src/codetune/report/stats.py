"""Paired statistics for two models graded on the same problems: exact McNemar and a paired bootstrap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

ALPHA = 0.05


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial(b + c, 1/2) test on the discordant pairs.

    `b` counts problems only the first model solved, `c` those only the second solved.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(Fraction(comb(n, k)) for k in range(min(b, c) + 1)) / 2**n
    return float(min(Fraction(1), 2 * tail))


def bootstrap_diff(
    a: list[bool], b: list[bool], n: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Pass@1(a) - Pass@1(b) and a paired percentile bootstrap interval, resampling problems with replacement."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    if not a:
        return 0.0, 0.0, 0.0
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    chunk = max(1, 2_000_000 // len(d))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        idx = rng.integers(0, len(d), size=(stop - start, len(d)))
        means[start:stop] = d[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(lo), float(hi)


def compare_pair(name_a: str, a: list[bool], name_b: str, b: list[bool], *, seed: int = 0) -> dict[str, Any]:
    """Everything the report says about one pair of models, including a plain-words verdict."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    p = mcnemar_exact(only_a, only_b)
    diff, lo, hi = bootstrap_diff(a, b, seed=seed)
    ci_has_zero = lo <= 0 <= hi
    significant = p < ALPHA and not ci_has_zero
    if significant:
        better = name_a if diff > 0 else name_b
        verdict = f"significant: {better} solves more (p = {p:.3g}, 95% CI excludes 0)"
    else:
        reasons = []
        if p >= ALPHA:
            reasons.append(f"McNemar p = {p:.3g} >= {ALPHA}")
        if ci_has_zero:
            reasons.append("the 95% interval contains 0")
        verdict = "not significant: " + " and ".join(reasons)
    return {
        "a": name_a,
        "b": name_b,
        "problems": len(a),
        "a_solved": sum(map(bool, a)),
        "b_solved": sum(map(bool, b)),
        "only_a": only_a,
        "only_b": only_b,
        "mcnemar_p": p,
        "diff": diff,
        "ci95": [lo, hi],
        "bootstrap": {"resamples": 10_000, "seed": seed, "method": "paired percentile, problems resampled"},
        "significant": significant,
        "verdict": verdict,
    }


def compare_all(sides: Sequence[tuple[str, Mapping[str, bool]]]) -> list[dict[str, Any]]:
    """`compare_pair` for every pair of (name, problem -> solved), on the problems both were graded on (in the
    first one's order)."""
    pairs = []
    for (name_a, a), (name_b, b) in combinations(sides, 2):
        common = [q for q in a if q in b]
        pairs.append(compare_pair(name_a, [a[q] for q in common], name_b, [b[q] for q in common]))
    return pairs
