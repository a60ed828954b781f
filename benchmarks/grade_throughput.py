"""Grading throughput: pre-forked sandbox workers vs. one fresh interpreter per test (sequential), in one run.

Usage: python benchmarks/grade_throughput.py [PROBLEMS.jsonl] [--timeout S] [--workers N]
Prints JSON: test executions per second for both, the ratio, the verdict mix and the isolation in force.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from codetune.bench.compare import compare_output
from codetune.bench.grade import grade_all
from codetune.bench.problems import Problem, load_problems
from codetune.bench.sandbox import HEADER, isolation_report

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lcb" / "atcoder_easy_2408_2502.jsonl"


def programs(p: Problem, i: int) -> list[str]:
    """A mix per problem: a 'correct' lookup program (runs every test), a wrong answer and a crash; every 8th
    problem also gets a memory hog. (Infinite loops are timed apart: they measure overlap, not throughput.)"""
    table = {t.input: t.output for t in p.tests}
    codes = [
        f"import sys\nT = {table!r}\nsys.stdout.write(T.get(sys.stdin.read(), 'x'))\n",
        "print(0)\n",
        "x = input()\nraise ValueError(x)\n",
    ]
    if i % 8 == 0:
        codes += ["a = [0] * (10**10)\n"]
    return codes


def baseline(
    problems: list[Problem], gens: dict[str, list[str]], timeout: float, memory_mb: int
) -> tuple[int, float]:
    """subprocess.run(python) per test, sequential, same stop-at-first-failure rule and header."""
    import resource

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))

    runs, start = 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for p in problems:
            for code in gens[p.question_id]:
                path = Path(d) / "prog.py"
                path.write_text(HEADER + code)
                for t in p.tests:
                    runs += 1
                    try:
                        r = subprocess.run([sys.executable, "-I", str(path)], input=t.input, capture_output=True,
                                           text=True, timeout=timeout, cwd=d, preexec_fn=limits)  # fmt: skip
                    except subprocess.TimeoutExpired:
                        break
                    if r.returncode != 0 or not compare_output(r.stdout, t.output, "lcb"):
                        break
    return runs, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU used by this process and its reaped children (workers, their per-test children, baseline runs)."""
    import resource

    return sum(
        getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )  # fmt: skip


def rate(executions: int, wall: float, cpu: float) -> dict:
    """Measured rate, and the rate the same CPU cost allows when the machine's CPUs are free (other jobs share
    this machine, so wall-clock rates move with its load)."""
    cpus = os.cpu_count() or 1
    return {"executions": executions, "seconds": round(wall, 2), "executions_per_s": round(executions / wall, 1),
            "cpu_ms_per_execution": round(1000 * cpu / executions, 2),
            "executions_per_s_on_idle_cpus": round(executions / cpu * cpus, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problems", nargs="?", default=str(DEFAULT))
    ap.add_argument("--timeout", type=float, default=1.0, help="per-test limit for both runs (s)")
    ap.add_argument("--memory-mb", type=int, default=512)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    source = args.problems if Path(args.problems).is_file() else "builtin:quickstart"
    problems = load_problems(source)
    gens = {p.question_id: programs(p, i) for i, p in enumerate(problems)}

    start, cpu0 = time.perf_counter(), cpu_seconds()
    rows = grade_all(problems, gens, timeout=args.timeout, memory_mb=args.memory_mb, workers=args.workers,
                     progress=False)  # fmt: skip
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    verdicts = [v["verdict"] for r in rows for m in r["metadata"] for v in m["verdicts"]]
    out = {
        "problems": source,
        "n_problems": len(problems),
        "n_programs": sum(len(c) for c in gens.values()),
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "timeout_s": args.timeout,
        "sandbox": {**rate(len(verdicts), wall, cpu), "verdicts": dict(Counter(verdicts))},
        "isolation": isolation_report(),
    }  # fmt: skip
    loops = problems[:4]
    start = time.perf_counter()
    rows = grade_all(loops, {p.question_id: ["while True:\n    pass\n"] for p in loops}, timeout=args.timeout,
                     memory_mb=args.memory_mb, workers=args.workers, progress=False)  # fmt: skip
    out["infinite_loops"] = {"programs": len(loops), "seconds": round(time.perf_counter() - start, 2),
                             "sequential_seconds": len(loops) * args.timeout,
                             "verdicts": [r["metadata"][0]["verdicts"][0]["verdict"] for r in rows]}  # fmt: skip
    if not args.skip_baseline:
        cpu0 = cpu_seconds()
        runs, secs = baseline(problems, gens, args.timeout, args.memory_mb)
        out["baseline"] = rate(runs, secs, cpu_seconds() - cpu0)
        out["speedup"] = round(out["sandbox"]["executions_per_s"] / out["baseline"]["executions_per_s"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
