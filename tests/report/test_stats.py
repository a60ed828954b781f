"""McNemar, the sign-flip permutation test and the paired bootstrap against hand-computed cases and scipy."""

from __future__ import annotations

import itertools

import pytest
from scipy.stats import binomtest

from codetune.report.stats import bootstrap_diff, compare_pair, mcnemar_exact, sign_flip_p


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


def test_a_pair_with_no_differing_problem_says_so_instead_of_a_zero_width_interval() -> None:
    from codetune.report.document import pair_rows, pair_sentence

    r = compare_pair("A", [True, False, False, True], "B", [True, False, False, True])
    assert (
        r["ci95"] == [0.0, 0.0] and r["verdict"] == "not significant: no problem differs between them (of 4)"
    )
    assert pair_rows([r])[0][6] == "n/a (no problem differs)"
    assert pair_sentence(r).startswith(
        "A vs B on 4 problems: Pass@1 difference +0.0 pts (no interval: no problem"
    )
    other = compare_pair("A", [True, False, False, True], "B", [False, False, False, True])
    assert pair_rows([other])[0][6].startswith("[") and "95% CI" in pair_sentence(other)


def test_sign_flip_hand_case() -> None:
    # |sum| over the 8 sign patterns of (0.6, 0.4, 0.2): 1.2, 0.8, 0.4, 0.0 twice each; observed 0.8 -> 4/8.
    assert sign_flip_p([0.6, 0.4, 0.0, -0.2, 0.0]) == 0.5  # zeros carry no sign
    assert sign_flip_p([0.0, 0.0]) == 1.0


def test_sign_flip_on_shares_matches_exact_enumeration() -> None:
    """Differences of shares of 5 samples, against an enumeration in exact fractions: float sums of shares must
    still count the patterns that tie the observed sum."""
    import random
    from fractions import Fraction

    rng = random.Random(3)
    for _ in range(40):
        d = [Fraction(rng.randint(0, 5) - rng.randint(0, 5), 5) for _ in range(rng.randint(1, 9))]
        observed = abs(sum(d))
        patterns = list(itertools.product([1, -1], repeat=len(d)))
        exact = Fraction(
            sum(abs(sum(s * x for s, x in zip(sg, d, strict=True))) >= observed for sg in patterns),
            len(patterns),
        )
        assert sign_flip_p([float(x) for x in d]) == pytest.approx(float(exact), abs=1e-12)


@pytest.mark.parametrize("discordant", [(0, 5), (3, 9), (7, 2), (4, 4), (0, 16), (10, 14)])
def test_sign_flip_on_outcomes_is_mcnemar(discordant: tuple[int, int]) -> None:
    b, c = discordant
    d = [1.0] * b + [-1.0] * c + [0.0] * 7
    exact = mcnemar_exact(b, c)
    got = sign_flip_p(d)
    if b + c <= 16:
        assert got == pytest.approx(exact, abs=1e-12)
    else:  # random sign patterns: within Monte Carlo error of the exact value
        assert got == pytest.approx(exact, abs=0.01)


def test_compare_pair_on_pass_rates() -> None:
    # 5 samples per problem: A passes 4 of 5 on 20 problems where B passes 1 of 5; 10 problems equal.
    a = [0.8] * 20 + [0.4] * 10
    b = [0.2] * 20 + [0.4] * 10
    r = compare_pair("A", a, "B", b)
    assert r["test"].startswith("paired sign-flip permutation") and r["mcnemar_p"] is None
    assert r["p"] == pytest.approx(1 / 100_001) and r["significant"] and "A solves more" in r["verdict"]
    assert (r["only_a"], r["only_b"]) == (20, 0) and r["diff"] == pytest.approx(0.4)
    assert r["a_solved"] == pytest.approx(20.0) and r["b_solved"] == pytest.approx(8.0)
    # Same first samples, different rates: the first-sample McNemar would see no difference at all.
    r = compare_pair("A", [0.4, 0.6, 0.2], "B", [0.4, 0.6, 0.2])
    assert r["p"] == 1.0 and r["diff"] == 0 and not r["significant"]
    r = compare_pair("A", [True, False], "B", [False, False])
    assert r["test"] == "exact McNemar" and r["mcnemar_p"] == r["p"] == 1.0 and r["a_solved"] == 1
