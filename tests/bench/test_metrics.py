"""pass@k estimator and summaries of graded rows."""

from __future__ import annotations

from itertools import combinations

import pytest

from codetune.bench.metrics import Z95, pass_at_k, summarize, wilson_interval


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    draws = list(combinations(range(n), k))
    return sum(any(samples[i] for i in d) for d in draws) / len(draws)


@pytest.mark.parametrize(
    "n,c,k", [(5, 0, 1), (5, 5, 3), (10, 3, 1), (10, 3, 5), (6, 1, 2), (7, 2, 7), (4, 3, 2)]
)
def test_pass_at_k_matches_enumeration(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_k_rejects_bad_arguments() -> None:
    for n, c, k in [(3, 4, 1), (3, 1, 4), (3, 1, 0), (3, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def row(qid: str, graded: list[bool], difficulty: str = "easy", platform: str = "atcoder") -> dict:
    return {"question_id": qid, "graded_list": graded, "difficulty": difficulty, "platform": platform}


def test_summarize_groups_and_pass_at_k() -> None:
    rows = [
        row("a", [True, True, False, False]),
        row("b", [False] * 4, difficulty="medium"),
        row("c", [True] * 4, platform="leetcode"),
    ]
    s = summarize(rows, [1, 2, 8])
    assert s["pass@1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert s["solved"] == 2 and s["total"] == 3
    assert set(s["pass@k"]) == {1, 2}  # 8 > 4 samples: left out
    assert s["pass@k"][2] == pytest.approx((brute_pass_at_k(4, 2, 2) + 0 + 1) / 3)
    assert s["pass@k"][1] == pytest.approx(s["pass@1"])
    assert s["by_difficulty"]["easy"] == {"pass@1": pytest.approx(0.75), "solved": 2, "total": 2}
    assert s["by_difficulty"]["medium"] == {"pass@1": 0.0, "solved": 0, "total": 1}
    assert s["by_platform"]["leetcode"]["pass@1"] == 1.0 and s["by_platform"]["atcoder"]["total"] == 2
    assert s["solved_per_sample"] == [2, 2, 1, 1]
    assert "solved_per_sample" not in summarize([row("a", [True]), row("b", [False])], [1])


def test_summarize_empty() -> None:
    s = summarize([], [1])
    assert s["total"] == 0 and s["pass@1"] == 0.0 and s["pass@k"] == {}


@pytest.mark.parametrize("passed,total", [(0, 41), (14, 41), (12, 41), (41, 41), (1, 10), (2.5, 4)])
def test_wilson_interval_bounds_solve_the_score_equation(passed: float, total: int) -> None:
    """Each bound p is a root of (rate - p)^2 = z^2 p (1 - p) / total, the score test's boundary."""
    lo, hi = wilson_interval(passed, total)
    rate = passed / total
    assert 0 <= lo <= rate <= hi <= 1
    for bound in (lo, hi):
        assert (rate - bound) ** 2 == pytest.approx(Z95**2 * bound * (1 - bound) / total, abs=1e-12)
    assert hi - lo > 0.05  # never a zero-width interval, even at 0 or all solved


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 41)[1] == pytest.approx(Z95**2 / (41 + Z95**2))
    assert wilson_interval(14, 41) == pytest.approx((0.2156, 0.4945), abs=5e-4)  # worked by hand
    assert wilson_interval(27, 41) == pytest.approx(tuple(1 - x for x in reversed(wilson_interval(14, 41))))


def test_summary_carries_the_interval() -> None:
    s = summarize([row(str(i), [i < 14]) for i in range(41)], [1])
    assert s["pass@1_ci95"] == pytest.approx(list(wilson_interval(14, 41)))
    assert summarize([], [1])["pass@1_ci95"] == [0.0, 1.0]
