"""Grade generated programs against problem tests in parallel sandboxes; rows in LiveCodeBench eval_all.json form."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from codetune.bench.compare import MODES, compare_functional, compare_output
from codetune.bench.problems import Problem, Test, function_name
from codetune.bench.sandbox import RunResult, Sandbox, SandboxDied
from codetune.errors import CodetuneError

SHORT = 200


def _short(text: str | None, limit: int = SHORT) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def judge(res: RunResult, test: Test, compare: str) -> dict:
    """One test's verdict from what the program did and what it printed (or returned, for functional tests)."""
    got = res.result if test.testtype == "functional" else res.stdout
    verdict = res.failure
    if verdict is None:
        if test.testtype == "functional":
            ok = res.result is not None and compare_functional(res.result, test.output)
        else:
            ok = compare_output(res.stdout, test.output, compare)
        verdict = "accepted" if ok else "wrong_answer"
    stderr = res.compile_error or res.stderr
    if res.output_truncated:
        stderr = (stderr + "\noutput limit exceeded").strip()
    return {
        "verdict": verdict,
        "time": res.time,
        "stderr": stderr[-SHORT * 5 :],
        "expected": _short(test.output),
        "got": _short(got),
    }


def grade_code(
    sb: Sandbox, problem: Problem, code: str, *, compare: str, timeout: float, memory_mb: int
) -> list[dict]:
    """Run `code` on the problem's tests in order, stopping at the first failure (as LiveCodeBench does)."""
    tests = problem.tests
    if not tests:
        return []
    functional = any(t.testtype == "functional" for t in tests)
    fn = function_name(problem) if functional else None
    if functional and fn is None:
        raise CodetuneError(
            f"problem {problem.question_id}: functional tests but no metadata func_name or starter-code method"
        )
    verdicts: list[dict] = []
    sb.load(code, fn)
    for test in tests:
        verdicts.append(judge(sb.run(test.input, timeout=timeout, memory_mb=memory_mb), test, compare))
        if verdicts[-1]["verdict"] != "accepted":
            break
    return verdicts


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("grade", total=total)
        yield lambda: bar.advance(task)


def grade_all(
    problems: list[Problem],
    generations: dict[str, list[str]],
    *,
    compare: str = "lcb",
    timeout: float = 6.0,
    memory_mb: int = 1024,
    workers: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Grade every code of every problem that has generations; one eval_all.json-style row per problem.

    Each worker thread owns one pre-forked sandbox worker, so time limits of different programs overlap.
    """
    if compare not in MODES:
        raise CodetuneError(f"compare: unknown mode {compare!r}; use one of {', '.join(MODES)}")
    by_id = {p.question_id: p for p in problems}
    unknown = sorted(set(generations) - set(by_id))
    if unknown:
        raise CodetuneError(
            f"generations: {len(unknown)} question ids are not in the problem set (first: {unknown[0]!r})"
        )
    chosen = [p for p in problems if generations.get(p.question_id)]
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for p in chosen:
        for i, code in enumerate(generations[p.question_id]):
            jobs.put((p, i, code))
    n_jobs = sum(len(generations[p.question_id]) for p in chosen)
    results: dict[tuple[str, int], list[dict]] = {}
    errors: list[BaseException] = []
    n_workers = max(1, min(workers or os.cpu_count() or 1, n_jobs or 1))

    with _progress(n_jobs, progress) as advance:
        lock = threading.Lock()

        def work() -> None:
            sb: Sandbox | None = None
            try:
                while not errors:
                    try:
                        p, i, code = jobs.get_nowait()
                    except queue.Empty:
                        return
                    if sb is None or not sb.alive():
                        sb = Sandbox()
                    try:
                        verdicts = grade_code(
                            sb, p, code, compare=compare, timeout=timeout, memory_mb=memory_mb
                        )
                    except SandboxDied as e:
                        verdicts = [
                            {"verdict": "runtime_error", "time": 0.0, "expected": "", "got": "",
                             "stderr": f"sandbox worker died while running this program ({e})"}
                        ]  # fmt: skip
                        sb = None
                    with lock:
                        results[(p.question_id, i)] = verdicts
                        advance()
            except BaseException as e:  # surfaced in the calling thread
                errors.append(e)
            finally:
                if sb is not None:
                    sb.close()

        threads = [threading.Thread(target=work, daemon=True) for _ in range(n_workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]

    rows = []
    for p in chosen:
        codes = generations[p.question_id]
        per_code = [results[(p.question_id, i)] for i in range(len(codes))]
        graded = [bool(v) and all(x["verdict"] == "accepted" for x in v) for v in per_code]
        rows.append(
            {
                "question_id": p.question_id,
                "question_title": p.question_title,
                "platform": p.platform,
                "difficulty": p.difficulty,
                "contest_date": p.contest_date,
                "code_list": list(codes),
                "graded_list": graded,
                "pass@1": sum(graded) / len(graded),
                "metadata": [{"verdicts": v, "compare": compare} for v in per_code],
            }
        )
    return rows
