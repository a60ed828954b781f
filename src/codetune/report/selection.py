"""Checkpoint selection without the winner's curse.

A run's best checkpoint is the one with the highest Pass@1 on the benchmark, and the Pass@1 printed beside it was
measured on the same problems that chose it. Among many checkpoints the winner is partly the one that was lucky on
these problems, so that number overstates what the chosen model does on new ones. The estimates here never let one
problem both choose a checkpoint and score it:

- leave one problem out: each problem is scored by the checkpoint the same rule picks from all the other problems,
  so the estimate is of the whole procedure "train, sweep, keep the best";
- lowest validation loss and last checkpoint: chosen without looking at the benchmark at all.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from codetune.bench.metrics import wilson_interval
from codetune.bench.sweep import rank_key
from codetune.report.inputs import EvalResult, Run, read_eval
from codetune.report.stats import compare_all


@dataclass
class Candidate:
    """One evaluated checkpoint of a run."""

    label: str
    step: int | None
    val_loss: float | None
    result: EvalResult


@dataclass
class Choice:
    """A checkpoint chosen by one rule and its Pass@1 on the shared problems."""

    label: str
    pass_at_1: float
    solved: int


@dataclass
class Selection:
    """What each selection rule gives for one run, on the problems every candidate was graded on."""

    run: str
    problems: list[str]
    candidates: int
    best: Choice
    # Per problem, the checkpoint chosen without it: the share of its samples that passed, and its first sample.
    loo_scores: dict[str, float]
    loo_outcomes: dict[str, bool]
    loo_labels: dict[str, str]
    lowest_val: Choice | None
    last: Choice

    @property
    def loo_pass(self) -> float:
        return sum(self.loo_scores.values()) / len(self.loo_scores)

    @property
    def optimism(self) -> float:
        """How far the benchmark-selected Pass@1 lies above the leave-one-out estimate."""
        return self.best.pass_at_1 - self.loo_pass

    @property
    def loo_interval(self) -> tuple[float, float]:
        return wilson_interval(self.loo_pass * len(self.problems), len(self.problems))

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "checkpoints": self.candidates,
            "problems": len(self.problems),
            "best_on_benchmark": vars(self.best),
            "leave_one_problem_out": {
                "pass@1": self.loo_pass,
                "pass@1_ci95": list(self.loo_interval),
                "solved": sum(self.loo_outcomes.values()),
                "chosen": dict(Counter(self.loo_labels.values())),
                "checkpoint_per_problem": self.loo_labels,
            },
            "lowest_val_loss": vars(self.lowest_val) if self.lowest_val else None,
            "last_checkpoint": vars(self.last),
            "optimism": self.optimism,
        }


def candidates(run: Run) -> list[Candidate]:
    """The run's swept checkpoints whose eval folders are present (the `base` row is not a candidate)."""
    found = []
    for row in run.sweep_rows:
        label = row.get("label")
        folder = run.path / "eval" / str(label)
        if label == "base" or not isinstance(label, str) or not (folder / "eval_all.json").is_file():
            continue
        val = row.get("val_loss")
        step = row.get("step")
        found.append(
            Candidate(
                label,
                step if isinstance(step, int) else None,
                float(val) if isinstance(val, int | float) else None,
                read_eval(folder, name=label),
            )
        )
    return found


def _choose(
    scores: dict[str, dict[str, Fraction]],
    totals: dict[str, Fraction],
    cands: list[Candidate],
    hide: str | None,
) -> Candidate:
    """The candidate the benchmark rule picks when problem `hide` is hidden from it."""

    def key(c: Candidate) -> tuple[float, float, float]:
        seen = totals[c.label] - (scores[c.label][hide] if hide is not None else 0)
        return rank_key(float(seen), c.val_loss, c.step)

    return min(cands, key=key)


def select(run_name: str, cands: list[Candidate]) -> Selection | None:
    """Every selection rule on one run; None with fewer than two checkpoints (nothing was selected)."""
    if len(cands) < 2:
        return None
    shared = set.intersection(*(set(c.result.rows) for c in cands))
    problems = [q for q in cands[0].result.rows if q in shared]
    if not problems:
        return None
    scores = {c.label: {q: s for q, s in c.result.scores().items() if q in shared} for c in cands}
    totals = {label: sum(mine.values(), Fraction(0)) for label, mine in scores.items()}
    firsts = {c.label: c.result.outcomes() for c in cands}

    def choice(c: Candidate) -> Choice:
        return Choice(
            c.label, float(totals[c.label] / len(problems)), sum(firsts[c.label][q] for q in problems)
        )

    loo_labels = {q: _choose(scores, totals, cands, q).label for q in problems}
    with_val = [c for c in cands if c.val_loss is not None and math.isfinite(c.val_loss)]
    return Selection(
        run=run_name,
        problems=problems,
        candidates=len(cands),
        best=choice(_choose(scores, totals, cands, None)),
        loo_scores={q: float(scores[loo_labels[q]][q]) for q in problems},
        loo_outcomes={q: firsts[loo_labels[q]][q] for q in problems},
        loo_labels=loo_labels,
        lowest_val=choice(min(with_val, key=lambda c: (c.val_loss, c.step or 0))) if with_val else None,
        last=choice(max(cands, key=lambda c: -1 if c.step is None else c.step)),
    )


def select_runs(runs: list[Run]) -> list[Selection]:
    return [s for run in runs if (s := select(run.name, candidates(run))) is not None]


def honest_pairs(selections: list[Selection], base: EvalResult | None) -> list[dict[str, Any]]:
    """Paired tests on the leave-one-out pass rates of each run (and the base model's, when given)."""
    sides: list[tuple[str, dict[str, float]]] = [
        (f"{s.run} (leave-one-out)", s.loo_scores) for s in selections
    ]
    if base is not None:
        sides.insert(0, ("base", {q: float(v) for q, v in base.scores().items()}))
    return compare_all(sides)
