"""The report's Training data section: what each arm trained on, and how much of it overlaps the benchmark.

Read from each run's `data_report.json` (written by `codetune run` and `codetune train`) and `run.json`. Runs of one
arm (one per seed) share their data and make one row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codetune.report.inputs import Run

DATA_HEADERS = [
    "Arm",
    "Data",
    "Answer",
    "Train rows (problems)",
    "Solutions per problem",
    "Valid / test rows",
    "Split leaks",
    "Benchmark overlap",
    "Tokens trained",
]
DATA_TEXT = (
    "What each arm trained on. Benchmark overlap: training statements sharing at least the threshold share of word "
    "n-grams with a benchmark problem's statement (the problems the models were graded on, when `codetune run` "
    "checked them, else `data.contamination.problems`); a model may have learned those answers by heart."
)


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _overlap(report: dict[str, Any]) -> dict[str, Any] | None:
    """The benchmark check: `benchmark_overlap` from `codetune run`, else the configured contamination check."""
    found = _dict(report.get("benchmark_overlap"))
    if found:
        return {
            "against": "the benchmark",
            "problems": _int(found.get("problems")),
            "rows": _int(found.get("rows")) or 0,
            "train_rows": _int(found.get("train_rows")) or 0,
            "question_ids": [q for q in _list(found.get("question_ids")) if isinstance(q, str)],
            "dropped": _int(found.get("dropped")) or 0,
        }
    conf = _dict(report.get("contamination"))
    if not isinstance(conf.get("problems"), str):
        return None
    matches = [
        m for m in _list(conf.get("matches")) if isinstance(m, dict) and _int(m.get("row")) is not None
    ]
    trained = [] if conf.get("dropped") else matches  # dropped rows were not trained on
    return {
        "against": conf["problems"],
        "problems": None,
        "rows": len({m["row"] for m in matches}),
        "train_rows": len({m["row"] for m in trained if m.get("split") == "train"}),
        "question_ids": sorted({str(m.get("question_id")) for m in matches}),
        "dropped": _int(conf.get("dropped")) or 0,
    }


def data_summaries(runs: list[Run]) -> list[dict[str, Any]]:
    """One summary per arm (a run, or the runs of one seeded arm) that has a data report."""
    by_arm: dict[str, dict[str, Any]] = {}
    for run in runs:
        if not run.data:
            continue
        arm = run.group or run.name
        tokens = run.tokens_trained
        if arm in by_arm:
            by_arm[arm]["runs"] += 1
            by_arm[arm]["tokens_trained"].append(tokens)
            continue
        splits = _dict(run.data.get("splits"))
        train = _dict(splits.get("train"))
        by_arm[arm] = {
            "arm": arm,
            "runs": 1,
            "source": str(run.data.get("source", "?")),
            "format": str(run.data.get("format", "?")),
            "answer": str(run.data.get("answer") or run.data.get("response") or "?"),
            "train_rows": _int(train.get("rows")),
            "train_problems": _int(train.get("problems")),
            "solutions_per_problem": _dict(train.get("solutions_per_problem")),
            "valid_rows": _int(_dict(splits.get("valid")).get("rows")),
            "test_rows": _int(_dict(splits.get("test")).get("rows")),
            "leaks": len(run.data["leaks"]) if isinstance(run.data.get("leaks"), list) else None,
            "benchmark_overlap": _overlap(run.data),
            "tokens_trained": [tokens],
        }
    return list(by_arm.values())


def shared_problems(runs: list[Run]) -> list[dict[str, Any]]:
    """For each pair of arms, how many training problems (same normalized statement) both trained on."""
    keys: dict[str, set[str]] = {}
    for run in runs:
        found = _list(_dict((run.data or {}).get("statement_keys")).get("train"))
        if found:
            keys.setdefault(run.group or run.name, {k for k in found if isinstance(k, str)})
    arms = list(keys)
    return [
        {
            "a": a,
            "b": b,
            "shared": len(keys[a] & keys[b]),
            "a_problems": len(keys[a]),
            "b_problems": len(keys[b]),
        }
        for i, a in enumerate(arms)
        for b in arms[i + 1 :]
    ]


def shared_sentence(p: dict[str, Any]) -> str:
    def share(n: int) -> str:
        return f"{p['shared'] / n:.0%}" if n else "-"

    return (
        f"{p['a']} and {p['b']} share {p['shared']:,} training problems (same normalized statement): "
        f"{share(p['a_problems'])} of {p['a']}'s {p['a_problems']:,}, {share(p['b_problems'])} of {p['b']}'s "
        f"{p['b_problems']:,}."
    )


def _overlap_cell(o: dict[str, Any] | None) -> str:
    if o is None:
        return "not checked"
    of = f" of {o['problems']}" if o["problems"] else ""
    if not o["rows"]:
        return f"none{of} problems" if of else f"none ({o['against']})"
    ids = o["question_ids"]
    shown = ", ".join(ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else "")
    dropped = f", {o['dropped']} dropped" if o.get("dropped") else ""
    return f"{len(ids)}{of} problems ({shown}): {o['rows']} rows, {o['train_rows']} in train{dropped}"


def data_rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for s in summaries:
        spp = s["solutions_per_problem"]
        tokens = [t for t in s["tokens_trained"] if isinstance(t, int)]
        mean = f"{round(sum(tokens) / len(tokens)):,}" if tokens else "-"
        rows.append(
            [
                s["arm"] + (f" ({s['runs']} runs)" if s["runs"] > 1 else ""),
                s["source"],
                f"{s['answer']} ({s['format']})",
                f"{s['train_rows']} ({s['train_problems']})",
                f"{spp.get('mean', '-')} (max {spp.get('max', '-')})",
                f"{s['valid_rows']} / {s['test_rows']}",
                "-" if s["leaks"] is None else str(s["leaks"]),
                _overlap_cell(s["benchmark_overlap"]),
                mean + (" (mean)" if len(tokens) > 1 else ""),
            ]
        )
    return rows


def data_notes(summaries: list[dict[str, Any]]) -> list[str]:
    """A warning per arm that trained on statements overlapping the benchmark."""
    notes = []
    for s in summaries:
        o = s["benchmark_overlap"]
        if o and o["train_rows"]:
            notes.append(
                f"{s['arm']}'s training data overlaps {len(o['question_ids'])} benchmark problem(s) "
                f"({', '.join(o['question_ids'][:5])}) in {o['train_rows']} training rows: its Pass@1 on them may "
                "measure memory, not skill. `decontaminate: true` in the experiment (or data.contamination.drop with the "
                "benchmark as data.contamination.problems) trains without them."
            )
    return notes
