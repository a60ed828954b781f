"""Pass@k (the unbiased estimator of Chen et al. 2021), a 95% interval for Pass@1, and per-difficulty / per-platform
summaries of graded rows."""

from __future__ import annotations

from collections import defaultdict
from math import comb, sqrt

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def wilson_interval(passed: float, total: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a pass rate over `total` problems, `passed` of them solved: unlike the normal
    approximation it stays inside [0, 1] and is not empty at 0 or `total` solved (0 of 41: up to 8.6%). With several
    samples per problem, `passed` is the sum of per-problem pass rates, and the interval errs wide."""
    if total <= 0:
        return 0.0, 1.0
    p, z2 = passed / total, z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return (0.0 if passed <= 0 else centre - half), (1.0 if passed >= total else centre + half)


def _group(rows: list[dict]) -> dict:
    n_correct = [(len(r["graded_list"]), sum(bool(g) for g in r["graded_list"])) for r in rows]
    total = len(rows)
    p1 = sum(c / n for n, c in n_correct if n) / total if total else 0.0
    return {"pass@1": p1, "solved": sum(1 for _, c in n_correct if c > 0), "total": total}


def summarize(rows: list[dict], ks: list[int]) -> dict:
    """Summarize `grade_all` rows.

    `pass@1` is the mean over problems of (accepted samples / samples), `pass@1_ci95` its Wilson interval over the
    problems; `pass@k` maps each k to the mean unbiased
    estimate over problems (a k larger than some problem's sample count is left out); `solved` counts problems with
    at least one accepted sample. `by_difficulty` and `by_platform` give {pass@1, solved, total} per group.
    With several samples, `solved_per_sample[i]` counts the problems whose i-th sample alone passed: how far a
    one-sample count (a greedy run's, say) can move by chance.
    """
    rows = [r for r in rows if r.get("graded_list")]
    out = _group(rows)
    min_n = min((len(r["graded_list"]) for r in rows), default=0)
    out["pass@k"] = {
        k: sum(pass_at_k(len(r["graded_list"]), sum(map(bool, r["graded_list"])), k) for r in rows)
        / len(rows)
        for k in sorted(set(ks))
        if rows and 1 <= k <= min_n
    }
    for key, field in (("by_difficulty", "difficulty"), ("by_platform", "platform")):
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            groups[str(r.get(field, ""))].append(r)
        out[key] = {name: _group(g) for name, g in sorted(groups.items())}
    per_sample = [sum(bool(r["graded_list"][i]) for r in rows) for i in range(min_n)] if min_n > 1 else None
    return {
        "pass@1": out["pass@1"],
        "pass@1_ci95": list(wilson_interval(out["pass@1"] * out["total"], out["total"])),
        "pass@k": out["pass@k"],
        "solved": out["solved"],
        "total": out["total"],
        "by_difficulty": out["by_difficulty"],
        "by_platform": out["by_platform"],
        **({"solved_per_sample": per_sample} if per_sample else {}),
    }
