"""Paired statistics for two models graded on the same problems: exact McNemar (one sample per problem) or a
sign-flip permutation test (several), and a paired bootstrap."""

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
    a: Sequence[float], b: Sequence[float], n: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Pass@1(a) - Pass@1(b) and a paired percentile bootstrap interval, resampling problems with replacement
    (per-problem outcomes, or shares of passing samples)."""
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


def sign_flip_p(d: Sequence[float], resamples: int = 100_000, seed: int = 0) -> float:
    """Two-sided paired permutation p-value of the mean of `d` (per-problem differences): each nonzero difference's
    sign flipped at random. Exact (every sign pattern) up to 16 nonzero differences, else `resamples` random
    patterns (p counts the observed one). With differences of +-1 alone it is the exact McNemar test."""
    x = np.asarray([v for v in d if v != 0], dtype=float)
    if not len(x):
        return 1.0
    observed = abs(x.sum()) - 1e-9  # shares of n samples sum inexactly in float
    if len(x) <= 16:
        signs = ((np.arange(2 ** len(x))[:, None] >> np.arange(len(x))) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ x) >= observed))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 10_000):
        signs = rng.choice([-1.0, 1.0], size=(min(10_000, resamples - start), len(x)))
        hits += int(np.sum(np.abs(signs @ x) >= observed))
    return (hits + 1) / (resamples + 1)


def compare_pair(
    name_a: str, a: Sequence[float], name_b: str, b: Sequence[float], *, seed: int = 0
) -> dict[str, Any]:
    """Everything the report says about one pair of models, including a plain-words verdict.

    `a` and `b` hold each shared problem's share of passing samples (0 or 1 with one sample). With 0/1 values the
    test is exact McNemar on the discordant problems; with shares of several samples it is the paired sign-flip
    permutation test on the per-problem differences, so every sample counts, not only the first. `a_solved` is
    the sum of the shares (the problems one sample solves, on average); `only_a` counts problems where A did better.
    """
    binary = all(v in (0, 1) for v in (*a, *b))
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    if binary:
        test, p = "exact McNemar", mcnemar_exact(only_a, only_b)
    else:
        test = "paired sign-flip permutation on per-problem pass rates"
        p = sign_flip_p([float(x) - float(y) for x, y in zip(a, b, strict=True)], seed=seed)
    diff, lo, hi = bootstrap_diff(a, b, seed=seed)
    ci_has_zero = lo <= 0 <= hi
    significant = p < ALPHA and not ci_has_zero
    if significant:
        better = name_a if diff > 0 else name_b
        verdict = f"significant: {better} solves more (p = {p:.3g}, 95% CI excludes 0)"
    elif only_a == only_b == 0:  # the bootstrap interval is [0, 0]: it says nothing, not "certainly equal"
        verdict = f"not significant: no problem differs between them (of {len(a)})"
    else:
        reasons = []
        if p >= ALPHA:
            reasons.append(f"{'McNemar' if binary else 'permutation'} p = {p:.3g} >= {ALPHA}")
        if ci_has_zero:
            reasons.append("the 95% interval contains 0")
        verdict = "not significant: " + " and ".join(reasons)
    return {
        "a": name_a,
        "b": name_b,
        "problems": len(a),
        "a_solved": int(sum(a)) if binary else float(sum(a)),
        "b_solved": int(sum(b)) if binary else float(sum(b)),
        "only_a": only_a,
        "only_b": only_b,
        "test": test,
        "p": p,
        "mcnemar_p": p if binary else None,
        "diff": diff,
        "ci95": [lo, hi],
        "bootstrap": {"resamples": 10_000, "seed": seed, "method": "paired percentile, problems resampled"},
        "significant": significant,
        "verdict": verdict,
    }


def compare_all(sides: Sequence[tuple[str, Mapping[str, float]]]) -> list[dict[str, Any]]:
    """`compare_pair` for every pair of (name, problem -> share of passing samples), on the problems both were
    graded on (in the first one's order). A pair with no problem in common is left out."""
    pairs = []
    for (name_a, a), (name_b, b) in combinations(sides, 2):
        common = [q for q in a if q in b]
        if common:
            pairs.append(compare_pair(name_a, [a[q] for q in common], name_b, [b[q] for q in common]))
    return pairs
