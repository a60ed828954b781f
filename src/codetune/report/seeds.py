"""Arms trained once per seed: how far the data's effect stands above seed-to-seed noise.

Each run contributes its per-problem outcomes with honest checkpoint selection (leave one problem out; a run with a
single checkpoint selects nothing and gives its own). An arm's Pass@1 is the mean over its seeds, and intervals come
from a two-level bootstrap: problems are resampled (the same draw for both sides of a comparison, which keeps them
paired), and each arm's seeds are resampled within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from codetune.report.inputs import EvalResult, Run
from codetune.report.selection import Selection

RESAMPLES = 10_000


@dataclass
class SeedGroup:
    """One arm's runs, a row per seed of per-problem pass rates (0 or 1 with one greedy sample)."""

    arm: str
    runs: list[str]
    problems: list[str]
    outcomes: np.ndarray  # (seeds, problems): the share of each problem's samples that passed
    best_pass: list[float]  # each seed's benchmark-selected Pass@1 (optimistic)

    def matrix(self, problems: list[str]) -> np.ndarray:
        index = {q: i for i, q in enumerate(self.problems)}
        return self.outcomes[:, [index[q] for q in problems]]

    def to_json(self) -> dict[str, Any]:
        per_seed = self.outcomes.mean(axis=1)
        lo, hi = bootstrap([self.outcomes])
        return {
            "arm": self.arm,
            "runs": self.runs,
            "problems": len(self.problems),
            "pass@1_per_seed": dict(zip(self.runs, per_seed.tolist(), strict=True)),
            "pass@1_mean": float(per_seed.mean()),
            "pass@1_ci95": [lo, hi],
            "seed_sd": float(per_seed.std(ddof=1)),
            "best_on_benchmark_mean": float(np.mean(self.best_pass)),
        }


def seed_groups(runs: list[Run], selections: list[Selection]) -> list[SeedGroup]:
    """Arms with two or more seeded runs that have eval results."""
    chosen = {s.run: s for s in selections}
    members: dict[str, list[tuple[str, dict[str, float], float]]] = {}
    for run in runs:
        if run.group is None or run.best is None:
            continue
        sel = chosen.get(run.name)
        rates = sel.loo_scores if sel else {q: float(v) for q, v in run.best.scores().items()}
        best = sel.best.pass_at_1 if sel else run.best.pass_at_1
        members.setdefault(run.group, []).append((run.name, rates, best))
    groups = []
    for arm, rows in members.items():
        if len(rows) < 2:
            continue
        shared = set.intersection(*(set(o) for _, o, _ in rows))
        problems = [q for q in rows[0][1] if q in shared]
        matrix = np.array([[float(o[q]) for q in problems] for _, o, _ in rows]).reshape(len(rows), -1)
        groups.append(SeedGroup(arm, [r for r, _, _ in rows], problems, matrix, [b for _, _, b in rows]))
    return groups


def bootstrap(sides: list[np.ndarray], n: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(sides[0]) (- mean(sides[1])): (seeds, problems) matrices over the same problems;
    problems resampled with one draw for all sides, seeds resampled within each side."""
    rng = np.random.default_rng(seed)
    problems = sides[0].shape[1]
    if problems == 0:
        return 0.0, 0.0
    pick = rng.integers(0, problems, size=(n, problems))
    means = []
    for m in sides:
        rows = rng.integers(0, m.shape[0], size=(n, m.shape[0]))
        means.append(m[rows[:, :, None], pick[:, None, :]].mean(axis=(1, 2)))
    stat = means[0] - means[1] if len(means) > 1 else means[0]
    lo, hi = np.percentile(stat, [2.5, 97.5])
    return float(lo), float(hi)


def compare_groups(groups: list[SeedGroup], base: EvalResult | None) -> list[dict[str, Any]]:
    """Mean Pass@1 difference and its two-level bootstrap interval for each pair of arms (and base vs each arm)."""
    sides: list[tuple[str, list[str], Any]] = [(g.arm, g.problems, g.matrix) for g in groups]
    if base is not None:
        rates = base.scores()
        base_problems = list(rates)

        def base_matrix(problems: list[str]) -> np.ndarray:
            return np.array([[float(rates[q]) for q in problems]]).reshape(1, -1)

        sides.insert(0, ("base", base_problems, base_matrix))
    pairs = []
    for (name_a, probs_a, mat_a), (name_b, probs_b, mat_b) in combinations(sides, 2):
        common = [q for q in probs_a if q in set(probs_b)]
        a, b = mat_a(common), mat_b(common)
        diff = float(a.mean() - b.mean()) if common else 0.0
        lo, hi = bootstrap([a, b])
        significant = bool(common) and not lo <= 0 <= hi
        pairs.append(
            {
                "a": name_a,
                "b": name_b,
                "problems": len(common),
                "n_seeds": [a.shape[0], b.shape[0]],  # runs on each side
                "diff": diff,
                "ci95": [lo, hi],
                "significant": significant,
                "verdict": ("significant" if significant else "not significant")
                + (": the 95% interval excludes 0" if significant else ": the 95% interval contains 0"),
            }
        )
    return pairs
