"""The data stage's public entry points: `build_splits` (SFT datasets + report) and `inspect` (statistics)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from codetune.data import conversation
from codetune.data.config import DataConfig
from codetune.data.contamination import find_matches, read_problems
from codetune.data.format import format_row, statement_text, token_lengths
from codetune.data.load import check_columns, open_source
from codetune.data.splits import SPLITS, find_leaks, group_rows, seeded_split, statement_key
from codetune.errors import CodetuneError


@dataclass
class SplitSet:
    """SFT datasets keyed `train`/`valid`/`test`, a report (stats, leaks, contamination) and the source fingerprint."""

    datasets: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""


def _problem_ids(rows: list[dict], cfg: DataConfig) -> list[str | None]:
    col = cfg.columns.problem_id or ("problem_id" if "problem_id" in rows[0] else None)
    if col is None:
        return [None] * len(rows)
    return [None if r.get(col) is None else str(r[col]) for r in rows]


def _given_splits(rows: list[dict], cfg: DataConfig, source: str) -> list[str]:
    col = cfg.columns.split
    names = cfg.split_names.model_dump()
    to_split = {value: split for split, value in names.items()}
    out = []
    for i, row in enumerate(rows):
        value = row.get(col)
        if not isinstance(value, str) or value not in to_split:
            known = ", ".join(f"{k}={v!r}" for k, v in names.items())
            raise CodetuneError(
                f"{source}: row {i + 1}: column '{col}' has value {value!r}, not one of the split names ({known}); "
                "set data.split_names or data.columns.split=null for a seeded split"
            )
        out.append(to_split[value])
    return out


def read_statements(
    rows: list[dict], cfg: DataConfig, source: str
) -> tuple[list[str], list[conversation.Conversation | None]]:
    """Each row's problem statement (the prompt column, or a conversation's first user turn) and its parsed
    conversation (None without `columns.messages`)."""
    if not cfg.columns.messages:
        return [statement_text(r, cfg, source, i) for i, r in enumerate(rows)], [None] * len(rows)
    col = cfg.columns.messages
    parsed = [conversation.parse(r[col], col, source, i) for i, r in enumerate(rows)]
    return [c.statement for c in parsed], list(parsed)


def build_splits(
    cfg: DataConfig,
    tokenizer: Any,
    benchmark: list[dict[str, str]] | None = None,
    *,
    drop_benchmark: bool = False,
) -> SplitSet:
    """Load `cfg.dataset`, split it by problem, format every row for TRL and report what was found.

    `benchmark` (`[{question_id, question_content}]`, the problems the models will be graded on) adds the report's
    `benchmark_overlap`: rows whose statement overlaps one of them (n-grams as in `cfg.contamination`), left out of
    every split when `drop_benchmark`.
    Row numbers in the report (`leaks`, `contamination.matches`) are 0-based indices into `load_rows(cfg)`.
    """
    import datasets

    examples, report = build_examples(cfg, tokenizer, benchmark, drop_benchmark=drop_benchmark)
    dsets = {s: datasets.Dataset.from_list(examples[s]) for s in SPLITS}
    return SplitSet(datasets=dsets, report=report, fingerprint=report["fingerprint"])


def build_examples(
    cfg: DataConfig,
    tokenizer: Any,
    benchmark: list[dict[str, str]] | None = None,
    *,
    drop_benchmark: bool = False,
) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """`build_splits` without the `datasets` wrapping: formatted examples per split, and the report."""
    src = open_source(cfg)
    check_columns(src, cfg)
    rows = src.rows
    statements, conversations = read_statements(rows, cfg, src.name)
    pids = _problem_ids(rows, cfg)
    given = cfg.columns.split is not None and cfg.columns.split in rows[0]
    if given:
        splits = _given_splits(rows, cfg, src.name)
    else:
        groups = group_rows(pids, statements)
        splits = seeded_split(groups, cfg.valid_fraction, cfg.test_fraction, cfg.seed)
    problem_ids = [
        p if p is not None else f"s-{statement_key(s)}" for p, s in zip(pids, statements, strict=True)
    ]
    leaks = find_leaks(statements, splits, problem_ids)

    def matches_with(problems: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Rows overlapping `problems` (n-grams as in `cfg.contamination`), with each row's problem id and split."""
        c = cfg.contamination
        found = find_matches(statements, problems, n=c.ngram, threshold=c.threshold)
        for m in found:
            m.update(problem_id=problem_ids[m["row"]], split=splits[m["row"]])
        return found

    matches = matches_with(read_problems(cfg.contamination.problems)) if cfg.contamination.problems else []
    contaminated = {m["row"] for m in matches} if cfg.contamination.drop else set()
    overlap = matches_with(benchmark) if benchmark is not None else None
    overlapping = {m["row"] for m in overlap or []}
    dropped = contaminated | (overlapping if drop_benchmark else set())

    eos = getattr(tokenizer, "eos_token", None) or ""
    if cfg.format == "study" and not eos:
        raise CodetuneError("data.format=study: the tokenizer has no EOS token to end each text with")
    examples: dict[str, list[dict]] = {s: [] for s in SPLITS}
    members: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, row in enumerate(rows):
        split = splits[i]
        if i in dropped or (cfg.max_rows is not None and len(examples[split]) >= cfg.max_rows):
            continue
        example = format_row(row, cfg, statements[i], problem_ids[i], eos, src.name, i, conversations[i])
        examples[split].append(example)
        members[split].append(i)
    _check_not_empty(examples, cfg, src.name, given, {splits[i] for i in dropped})

    stats = {}
    for s in SPLITS:
        per_problem = Counter(problem_ids[i] for i in members[s])
        stats[s] = {
            "rows": len(members[s]),
            "problems": len(per_problem),
            "solutions_per_problem": {
                "mean": round(len(members[s]) / len(per_problem), 3) if per_problem else 0.0,
                "max": max(per_problem.values(), default=0),
            },
        }
    report: dict[str, Any] = {
        "source": src.name,
        "fingerprint": src.fingerprint,
        "format": cfg.format,
        "response": cfg.response,
        "answer": _answer(cfg),
        "split_source": "column" if given else "seeded",
        "total_rows": len(rows),
        "splits": stats,
        "leaks": leaks,
        # one key per distinct normalized statement: the report counts problems two arms share
        "statement_keys": {s: sorted({statement_key(statements[i]) for i in members[s]}) for s in SPLITS},
        "contamination": {
            "problems": cfg.contamination.problems,
            "ngram": cfg.contamination.ngram,
            "threshold": cfg.contamination.threshold,
            "matches": matches,
            "dropped": len(contaminated),
        },
    }
    if overlap is not None:
        trained = set(members["train"])
        report["benchmark_overlap"] = {
            "problems": len(benchmark or []),
            "ngram": cfg.contamination.ngram,
            "threshold": cfg.contamination.threshold,
            "rows": len(overlapping),
            "train_rows": len(overlapping & trained),
            "dropped": len(overlapping) if drop_benchmark else 0,
            "question_ids": sorted({m["question_id"] for m in overlap}),
            "matches": overlap,
        }
    return examples, report


def _answer(cfg: DataConfig) -> str:
    """What the model learns to write, in words."""
    if cfg.columns.messages:
        return f"last assistant turn of '{cfg.columns.messages}'"
    if cfg.format == "study":
        return f"column '{cfg.columns.solution}'"
    if cfg.response == "template":
        return f"template {cfg.template!r}"
    return f"column '{getattr(cfg.columns, cfg.response)}'"


def _check_not_empty(
    examples: dict[str, list], cfg: DataConfig, source: str, given: bool, dropped_from: set[str]
) -> None:
    """Every split that should have rows has some; `dropped_from`: splits that lost rows to a contamination drop."""
    fractions = {"valid": cfg.valid_fraction, "test": cfg.test_fraction}
    for s in SPLITS:
        if examples[s]:
            continue
        if s in dropped_from:
            raise CodetuneError(
                f"{source}: split '{s}' is empty: each of its rows overlaps the benchmark and was dropped "
                "(data.contamination.drop or the experiment's decontaminate)"
            )
        if given:
            value = getattr(cfg.split_names, s)
            raise CodetuneError(
                f"{source}: split '{s}' is empty (no rows with {cfg.columns.split}={value!r}); "
                f"set data.split_names.{s} to the value your data uses"
            )
        if s == "train" or fractions[s] > 0:
            raise CodetuneError(
                f"{source}: split '{s}' is empty after a seeded split by problem; "
                "the data needs at least 3 distinct problems (or set data.valid_fraction/test_fraction to 0)"
            )


def percentile(values: list[int], p: float) -> int:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def inspect(cfg: DataConfig, tokenizer: Any) -> dict[str, Any]:
    """Rows, problems, solutions per problem and token lengths per split, plus leaks and contamination."""
    examples, report = build_examples(cfg, tokenizer)
    splits = {}
    for s in SPLITS:
        lengths = token_lengths(examples[s], tokenizer)
        over = sum(n > cfg.max_length for n in lengths)
        splits[s] = {
            **report["splits"][s],
            "tokens": {
                "p50": percentile(lengths, 50),
                "p90": percentile(lengths, 90),
                "p99": percentile(lengths, 99),
                "max": max(lengths, default=0),
            },
            "truncated": over,
            "truncated_share": round(over / len(lengths), 4) if lengths else 0.0,
        }
    return {
        "dataset": cfg.dataset,
        "fingerprint": report["fingerprint"],
        "format": cfg.format,
        "response": cfg.response,
        "split_source": report["split_source"],
        "max_length": cfg.max_length,
        "total_rows": report["total_rows"],
        "splits": splits,
        "leaks": report["leaks"],
        "contamination": report["contamination"],
    }
