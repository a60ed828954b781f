"""Read what the report needs: loss logs (codetune or study format), run folders, sweeps and eval folders."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from codetune.errors import CodetuneError
from codetune.files import not_found, read_json

LOSS_KEYS = ("train_loss", "val_loss", "test_loss")


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Loss log rows `{step, train_loss, val_loss, test_loss}` sorted by step; missing losses are None.

    Accepts codetune's log.json, the study's `*_train_val_test_log.json` and a Trainer `trainer_state.json`.
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("log_history"), list):
        data = [
            {**r, "val_loss": r.get("val_loss", r.get("eval_loss")), "train_loss": r.get("loss")}
            for r in data["log_history"]
        ]
    if not isinstance(data, list):
        raise CodetuneError(f"{path}: expected a list of {{step, train_loss, val_loss, test_loss}} objects")
    rows: dict[int, dict[str, Any]] = {}
    for i, r in enumerate(data):
        if not isinstance(r, dict) or _finite(r.get("step")) is None:
            raise CodetuneError(f"{path}: entry {i}: expected an object with a numeric 'step'")
        row = rows.setdefault(int(r["step"]), {"step": int(r["step"]), **dict.fromkeys(LOSS_KEYS)})
        for k in LOSS_KEYS:
            if _number(r.get(k)) is not None:
                row[k] = float(r[k])
    return [rows[s] for s in sorted(rows)]


def _finite(x: Any) -> float | None:
    v = _number(x)
    return v if v is not None and math.isfinite(v) else None


def normalize_pass(x: Any) -> float | None:
    """Pass@1 as a fraction; LiveCodeBench sometimes writes percentages. None when it is no pass rate at all."""
    v = _finite(x)
    if v is None or not 0 <= v <= 100:
        return None
    return v / 100 if v > 1 else v


@dataclass
class EvalResult:
    """One eval folder: summary.json plus the per-problem rows of eval_all.json."""

    name: str
    path: Path
    summary: dict[str, Any]
    rows: dict[str, dict[str, Any]]

    @property
    def pass_at_1(self) -> float:
        p = normalize_pass(self.summary.get("pass@1"))
        if p is None:
            scores = [normalize_pass(r.get("pass@1")) or 0.0 for r in self.rows.values()]
            p = sum(scores) / len(scores) if scores else 0.0
        return p

    @property
    def pass_interval(self) -> tuple[float, float]:
        """95% Wilson interval of Pass@1 over the problems graded."""
        from codetune.bench.metrics import wilson_interval

        return wilson_interval(self.pass_at_1 * self.total, self.total)

    @property
    def solved(self) -> int:
        s = _finite(self.summary.get("solved"))
        return int(s) if s is not None else sum(self.outcomes().values())

    @property
    def total(self) -> int:
        t = _finite(self.summary.get("total"))
        return int(t) if t is not None else len(self.rows)

    def outcomes(self) -> dict[str, bool]:
        """Per problem: did the first (greedy) sample pass?"""
        out = {}
        for qid, r in self.rows.items():
            graded = r.get("graded_list") or []
            out[qid] = bool(graded[0]) if graded else (normalize_pass(r.get("pass@1")) or 0) > 0
        return out

    def scores(self) -> dict[str, Fraction]:
        """Per problem: the share of its samples that passed (0 or 1 with one greedy sample), exactly."""
        out = {}
        for qid, r in self.rows.items():
            graded = r.get("graded_list") or []
            if graded:
                out[qid] = Fraction(sum(map(bool, graded)), len(graded))
            else:
                out[qid] = Fraction(normalize_pass(r.get("pass@1")) or 0).limit_denominator(1000)
        return out

    def answer(self, qid: str) -> tuple[str, str]:
        """(extracted code, raw output) of the first sample of one problem."""
        r = self.rows.get(qid, {})
        codes, outputs = r.get("code_list") or [""], r.get("output_list") or [""]
        return str(codes[0] or ""), str(outputs[0] or "")


ROW_LISTS = {"graded_list": (bool, int), "code_list": (str, type(None)), "output_list": (str, type(None))}


def _check_row(r: dict[str, Any], where: str) -> None:
    """The fields of an eval_all.json row the report reads, with LiveCodeBench's types."""
    if not isinstance(r["question_id"], str | int) or isinstance(r["question_id"], bool):
        raise CodetuneError(f"{where}: question_id: expected a string")
    for key, types in ROW_LISTS.items():
        value = r.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, types) for v in value)):
            raise CodetuneError(
                f"{where}: {key}: expected a list of {' or '.join(t.__name__ for t in types)}"
            )
    if r.get("pass@1") is not None and _number(r.get("pass@1")) is None:
        raise CodetuneError(f"{where}: pass@1: expected a number")


def read_eval(path: str | Path, name: str | None = None) -> EvalResult:
    path = Path(path)
    if not (path / "eval_all.json").is_file() and (path / "eval" / "eval_all.json").is_file():
        path = path / "eval"  # the folder above an eval folder, as `codetune run` lays out base/eval/
    if not path.is_dir():
        raise CodetuneError(
            f"{not_found(path, 'eval folder')} (expected summary.json and eval_all.json inside)"
        )
    summary_path, all_path = path / "summary.json", path / "eval_all.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    if not isinstance(summary, dict):
        raise CodetuneError(f"{summary_path}: expected a JSON object")
    if not all_path.is_file():
        raise CodetuneError(f"{all_path}: file not found; run `codetune eval` on this folder first")
    data = read_json(all_path)
    if not isinstance(data, list):
        raise CodetuneError(f"{all_path}: expected a list of per-problem results")
    rows = {}
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "question_id" not in r:
            raise CodetuneError(f"{all_path}: entry {i}: missing question_id")
        _check_row(r, f"{all_path}: entry {i}")
        if str(r["question_id"]) in rows:
            raise CodetuneError(f"{all_path}: entry {i}: question_id {r['question_id']!r} appears twice")
        rows[str(r["question_id"])] = r
    if not rows:
        raise CodetuneError(f"{all_path}: no graded problems")
    total = _finite(summary.get("total"))
    if total is not None and total != len(rows):
        raise CodetuneError(
            f"{all_path}: {len(rows)} graded problems, but {summary_path.name} says total {int(total)}; "
            "run `codetune eval` on this folder again"
        )
    return EvalResult(
        name=name or str(summary.get("label") or path.name), path=path, summary=summary, rows=rows
    )


@dataclass
class Run:
    """A training run folder and its checkpoint sweep."""

    name: str
    path: Path
    log: list[dict[str, Any]]
    sweep_rows: list[dict[str, Any]] = field(default_factory=list)
    best_label: str | None = None
    best: EvalResult | None = None
    base: EvalResult | None = None
    group: str | None = None  # the arm, when an experiment trained it once per seed
    data: dict[str, Any] | None = None  # data_report.json: splits, leaks, benchmark overlap
    tokens_trained: int | None = None  # run.json's tokens_seen

    @property
    def best_row(self) -> dict[str, Any] | None:
        return next((r for r in self.sweep_rows if r.get("label") == self.best_label), None)

    def val_loss_at(self, step: int | None) -> float | None:
        row = self.best_row
        if row and _number(row.get("val_loss")) is not None:
            return float(row["val_loss"])
        return next((r["val_loss"] for r in self.log if r["step"] == step), None)


def read_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise CodetuneError(not_found(path, "run folder"))
    meta = read_json(path / "run.json") if (path / "run.json").is_file() else {}
    name = str(meta.get("arm") or meta.get("name") or path.name) if isinstance(meta, dict) else path.name
    log = read_log(path / "log.json") if (path / "log.json").is_file() else []
    run = Run(name=name, path=path, log=log, group=_group(path / "config.yaml"))
    tokens = meta.get("tokens_seen") if isinstance(meta, dict) else None
    run.tokens_trained = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
    if (path / "data_report.json").is_file():
        data = read_json(path / "data_report.json")
        if not isinstance(data, dict):
            raise CodetuneError(f"{path / 'data_report.json'}: expected a JSON object (splits, leaks, ...)")
        run.data = data
    sweep_path = path / "eval" / "sweep.json"
    if sweep_path.is_file():
        sweep = read_json(sweep_path)
        if not isinstance(sweep, dict) or not isinstance(sweep.get("rows"), list):
            raise CodetuneError(f"{sweep_path}: rows: expected a list of {{label, step, pass@1, ...}}")
        run.sweep_rows = [r for r in sweep["rows"] if isinstance(r, dict)]
        run.best_label = sweep.get("best")
        if run.best_label:
            best_dir = path / "eval" / str(run.best_label)
            if not best_dir.is_dir():
                raise CodetuneError(f"{sweep_path}: best: eval folder {best_dir} is missing")
            run.best = read_eval(best_dir, name=run.name)
    # an arm of `codetune run`: arms/<arm>/ beside base/eval/
    shared_base = path.parent.parent / "base" / "eval"
    if (path / "eval" / "base" / "eval_all.json").is_file():
        run.base = read_eval(path / "eval" / "base", name="base")
    elif path.parent.name == "arms" and (shared_base / "eval_all.json").is_file():
        run.base = read_eval(shared_base, name="base")
    if not log and run.best is None:
        if (path / "arms").is_dir():
            raise CodetuneError(
                f"{path}: an experiment folder; give its runs ({path / 'arms'}/*), or open the report it has "
                f"({path / 'report' / 'report.html'})"
            )
        raise CodetuneError(
            f"{path}: neither log.json nor eval/sweep.json found; is this a codetune run folder?"
        )
    return run


def _group(config: Path) -> str | None:
    """The `group` that `codetune run` writes into a seeded run's config.yaml."""
    from codetune.configio import read_yaml

    group = read_yaml(config).get("group") if config.is_file() else None
    return str(group) if group is not None else None


STEP_RE = re.compile(r"step-?(\d+)")


def read_study_summary(path: str | Path) -> list[dict[str, Any]]:
    """The study's LiveCodeBench summary: one row per checkpoint {name, step, pass@1, solved, total}."""
    path = Path(path)
    data = read_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise CodetuneError(f"{path}: results: expected a list of checkpoint results")
    rows = []
    for i, r in enumerate(results):
        stats = (r.get("stats") or {}) if isinstance(r, dict) else None
        if not isinstance(stats, dict):
            raise CodetuneError(f"{path}: results[{i}]: expected an object with an optional 'stats' object")
        name = str(r.get("model_name", f"result {i}"))
        m = STEP_RE.search(name) or STEP_RE.search(str(r.get("checkpoint_path", "")))
        rows.append(
            {
                "name": name,
                "type": r.get("model_type"),
                "step": int(m.group(1)) if m else None,
                "pass@1": normalize_pass(r.get("pass_at_1", stats.get("pass_at_1"))),
                "solved": stats.get("passed"),
                "total": stats.get("total", r.get("num_problems")),
            }
        )
    return rows


def tests_graded(summaries: list[dict[str, Any]]) -> str:
    """What the pass/fail verdicts were graded on, as the eval summaries state it."""
    notes = set()
    for s in summaries:
        probs = s["problems"] if isinstance(s.get("problems"), dict) else {}
        value = s.get("tests", probs.get("tests"))
        public_only = s.get("public_tests_only", probs.get("public_tests_only"))
        text = value.strip().lower() if isinstance(value, str) else ""
        if public_only is True or ("public" in text and "private" not in text):
            notes.add("public tests only")
        elif isinstance(value, str) and value.strip():
            notes.add(value.strip())
    if not notes:
        return "not stated in the eval summaries"
    return "; ".join(sorted(notes))
