"""McNemar and paired bootstrap against hand-computed cases and scipy."""

from __future__ import annotations

import itertools

import pytest
from scipy.stats import binomtest

from codetune.report.stats import bootstrap_diff, compare_pair, mcnemar_exact


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 5, 0.0625),
        (5, 0, 0.0625),
        (1, 9, 0.021484375),
        (0, 0, 1.0),
        (3, 3, 1.0),
        (7, 7, 1.0),
        (0, 1, 1.0),
        (2, 4, 0.6875),
    ],
)
def test_mcnemar_hand_cases(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, abs=1e-15)


def test_mcnemar_matches_scipy_binomtest() -> None:
    for b, c in itertools.product(range(0, 26, 3), range(0, 31, 4)):
        if b + c == 0:
            continue
        expected = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9), (b, c)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_bootstrap_two_problems_by_hand() -> None:
    # d = [1, 0]: a resample mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4 -> the 95% interval is [0, 1].
    diff, lo, hi = bootstrap_diff([True, False], [False, False])
    assert diff == 0.5 and lo == 0.0 and hi == 1.0


def test_bootstrap_degenerate_and_deterministic() -> None:
    assert bootstrap_diff([True] * 10, [False] * 10) == (1.0, 1.0, 1.0)
    assert bootstrap_diff([True, False, True], [True, False, True]) == (0.0, 0.0, 0.0)
    a = [i % 3 == 0 for i in range(41)]
    b = [i % 2 == 0 for i in range(41)]
    first = bootstrap_diff(a, b, seed=0)
    assert first == bootstrap_diff(a, b, seed=0)
    assert first != bootstrap_diff(a, b, seed=1)
    diff, lo, hi = first
    assert diff == pytest.approx((sum(a) - sum(b)) / 41)
    assert lo < diff < hi
    # Normal approximation of the paired difference: the percentile interval should be close to it.
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(d) / len(d)
    se = (sum((v - mean) ** 2 for v in d) / len(d) / len(d)) ** 0.5
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.03)
    assert hi == pytest.approx(mean + 1.96 * se, abs=0.03)


def test_bootstrap_length_mismatch() -> None:
    with pytest.raises(ValueError):
        bootstrap_diff([True], [True, False])


def test_compare_pair_verdicts() -> None:
    # 5 problems only B solves: the interval excludes 0 but McNemar p = 0.0625, so not significant.
    a = [False] * 5 + [True] * 10
    b = [True] * 5 + [True] * 10
    r = compare_pair("A", a, "B", b)
    assert (r["only_a"], r["only_b"]) == (0, 5)
    assert r["mcnemar_p"] == 0.0625 and r["ci95"][1] < 0
    assert not r["significant"] and r["verdict"].startswith("not significant")
    # 12 problems only A solves out of 40: significant both ways.
    a = [True] * 12 + [False] * 28
    b = [False] * 40
    r = compare_pair("A", a, "B", b)
    assert (
        r["significant"] and r["mcnemar_p"] < 0.001 and r["ci95"][0] > 0 and "A solves more" in r["verdict"]
    )
