"""kill -9 at seeded random points of `codetune eval`, `codetune grade` and `codetune train`, then the same command
again: the results equal an uninterrupted run's, no record is lost or doubled, no JSON file is ever half-written, and
no process of the killed run survives. Killed runs and their reference run go in parallel to keep this short."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml
from reliability_helpers import cli_env

from codetune.bench.problems import BUILTIN_DIR

EVAL_SEEDS = (16, 19)  # kill points: mid-generation, grading (seed 2: while loading the model)
GRADE_SEEDS = (21, 22, 23)
TRAIN_SEED = 13  # kill point: 0.44 s after checkpoint-2 appears, mid-run


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """Orphans of a killed run are re-parented to this process, so a stray cannot hide from the checks."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    yield
    libc.prctl(36, 0, 0, 0, 0)


def launch(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "codetune.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                                env=cli_env())  # fmt: skip


def finish(proc: subprocess.Popen, log: Path, timeout: float = 400) -> None:
    assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay: float, out: dict) -> None:
    """SIGKILL `proc` `delay` seconds after `ready()` turns true; out["killed"] says whether it was still running."""
    while not ready():
        if proc.poll() is not None:
            out["killed"] = False
            return
        time.sleep(0.02)
    time.sleep(delay)
    out["killed"] = proc.poll() is None
    if out["killed"]:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def run_killers(jobs: list[tuple[subprocess.Popen, Callable[[], bool], float]]) -> list[bool]:
    outs = [{} for _ in jobs]
    threads = [
        threading.Thread(target=kill_when, args=(*job, out)) for job, out in zip(jobs, outs, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=400)
    return [o.get("killed", False) for o in outs]


def no_partial_files(folder: Path) -> None:
    """Every JSON file parses whole; every JSONL line does, but for at most one torn last line. Hidden names (temp
    files, the `.staging/` folder checkpoints are written in before their rename) are work in progress."""
    for path in folder.rglob("*.json"):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            json.loads(path.read_text())  # a half-written file raises here
    for path in folder.rglob("*.jsonl"):
        lines = path.read_bytes().split(b"\n")
        for line in lines[:-1]:
            json.loads(line)


def survivors(running: tuple[subprocess.Popen, ...] = ()) -> list[str]:
    """Live processes descended from this test process, but for the `running` ones and theirs (zombies reaped)."""
    time.sleep(0.3)
    skip = set()
    for proc in running:
        with contextlib.suppress(psutil.NoSuchProcess):
            skip |= {proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))}
    alive = []
    for p in psutil.Process().children(recursive=True):
        if p.pid in skip:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                if p.ppid() == os.getpid():
                    os.waitpid(
                        p.pid, os.WNOHANG
                    )  # an orphan handed to us as subreaper; never a Popen of ours
                continue
            alive.append(" ".join(p.cmdline())[:120])
        except (psutil.NoSuchProcess, ChildProcessError):
            continue
    return alive


def without_times(rows: list[dict]) -> list[dict]:
    for row in rows:
        for meta in row.get("metadata", []):
            for v in meta.get("verdicts", []):
                v.pop("time", None)
    return rows


def n_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else -1


def test_generation_killed_anywhere_resumes_to_the_same_results(
    tiny_model_dir: Path, tmp_path: Path, training: dict, figures: Counter, notes: list
) -> None:
    def args(out: Path) -> list[str]:
        return ["eval", "--model", str(tiny_model_dir), "--problems", "builtin:quickstart", "--limit", "5",
                "--max-new-tokens", "12", "--batch-size", "1", "-o", "workers=2", "-o", "timeout=3",
                "--out", str(out), "--no-progress"]  # fmt: skip

    ref = tmp_path / "ref"
    ref_proc = launch(args(ref), tmp_path / "ref.log")
    jobs, points = [], []
    for seed in EVAL_SEEDS:
        rng, out = random.Random(seed), tmp_path / f"seed{seed}"
        k = rng.randrange(0, 6)  # 0: while loading the model; 1-4: after k of 5 generations; 5: while grading
        ready = {0: lambda o=out: (o / "settings.json").is_file(), 5: lambda o=out: (o / "generations.json").is_file()}.get(
            k, lambda o=out, k=k: n_lines(o / "generations.jsonl") >= k)  # fmt: skip
        delay = rng.uniform(0, 0.3)
        points.append(
            f"seed {seed}: {['model load', *(f'after {i} generations' for i in range(1, 5)), 'grading'][k]} +{delay:.2f}s"
        )
        jobs.append((launch(args(out), tmp_path / f"seed{seed}.log"), ready, delay))
    killed = run_killers(jobs)
    finish(ref_proc, tmp_path / "ref.log")
    assert all(killed), f"runs finished before their kill point: {points}"
    assert not survivors(running=(training["ref_proc"], training["victim"]))
    for seed in EVAL_SEEDS:
        no_partial_files(tmp_path / f"seed{seed}")
    resumed = [launch(args(tmp_path / f"seed{s}"), tmp_path / f"resume{s}.log") for s in EVAL_SEEDS]
    for seed, proc in zip(EVAL_SEEDS, resumed, strict=True):
        finish(proc, tmp_path / f"resume{seed}.log")

    want = {
        k: json.loads((ref / k).read_text()) for k in ("generations.json", "eval_all.json", "summary.json")
    }
    ref_lines = [json.loads(x) for x in (ref / "generations.jsonl").read_text().splitlines()]
    for seed in EVAL_SEEDS:
        out = tmp_path / f"seed{seed}"
        lines = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
        keys = [(r["question_id"], r["sample"]) for r in lines]
        assert len(keys) == len(set(keys)) == len(ref_lines), "duplicate or lost generation records"
        assert sorted(lines, key=lambda r: r["question_id"]) == sorted(
            ref_lines, key=lambda r: r["question_id"]
        )
        assert json.loads((out / "generations.json").read_text()) == want["generations.json"]
        assert without_times(json.loads((out / "eval_all.json").read_text())) == without_times(
            want["eval_all.json"]
        )
        got = json.loads((out / "summary.json").read_text())
        for key in ("pass@1", "solved", "total", "by_difficulty", "settings"):
            assert got[key] == want["summary.json"][key], key
        figures["crashes_survived"] += 1
        figures["kills_generation"] += 1
    notes.append("kill points (eval): " + "; ".join(points))


def grading_inputs(tmp_path: Path) -> Path:
    """Four programs per quickstart problem: right, wrong, crashing, and right but slow (so kills land mid-grading)."""
    solutions = json.loads((BUILTIN_DIR / "quickstart_solutions.json").read_text())
    rows = []
    for qid, code in solutions.items():
        slow = "import time\ntime.sleep(0.15)\n" + code
        rows.append({"question_id": qid, "code_list": [code, "print(42)", "raise SystemExit(3)", slow]})
    path = tmp_path / "generations.json"
    path.write_text(json.dumps(rows))
    return path


def test_grading_killed_anywhere_leaves_no_partial_output(
    tmp_path: Path, training: dict, figures: Counter, notes: list
) -> None:
    gens = grading_inputs(tmp_path)

    def args(out: Path) -> list[str]:
        return ["grade", "--problems", "builtin:quickstart", "--generations", str(gens), "--out", str(out),
                "--workers", "2", "--timeout", "5"]  # fmt: skip

    ref = tmp_path / "ref.json"
    ref_proc = launch(args(ref), tmp_path / "ref.log")
    jobs, points = [], []
    for seed in GRADE_SEEDS:
        delay = random.Random(seed).uniform(0.8, 3.5)
        points.append(f"seed {seed}: {delay:.2f}s after start")
        jobs.append(
            (launch(args(tmp_path / f"seed{seed}.json"), tmp_path / f"seed{seed}.log"), lambda: True, delay)
        )
    killed = run_killers(jobs)
    finish(ref_proc, tmp_path / "ref.log")
    assert all(killed), f"grading finished before its kill point: {points}"
    assert not survivors(
        running=(training["ref_proc"], training["victim"])
    )  # the sandbox workers and their programs died with the grader
    for seed in GRADE_SEEDS:
        assert not (tmp_path / f"seed{seed}.json").exists()  # nothing that could pass for a result
    resumed = [launch(args(tmp_path / f"seed{s}.json"), tmp_path / f"again{s}.log") for s in GRADE_SEEDS]
    for seed, proc in zip(GRADE_SEEDS, resumed, strict=True):
        finish(proc, tmp_path / f"again{seed}.log")
    want = without_times(json.loads(ref.read_text()))
    assert sum(sum(r["graded_list"]) for r in want) == 2 * len(want)  # the right and the slow-but-right ones
    for seed in GRADE_SEEDS:
        assert without_times(json.loads((tmp_path / f"seed{seed}.json").read_text())) == want
        figures["crashes_survived"] += 1
        figures["kills_grading"] += 1
    notes.append("kill points (grade): " + "; ".join(points))


@pytest.fixture(scope="module", autouse=True)
def training(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The two training runs (reference and victim) start with the module and overlap the other tests."""
    tmp = tmp_path_factory.mktemp("train-kill")
    cfg = tmp / "arm.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": str(tiny_model_dir),
        "data": {"dataset": "builtin:deep", "format": "study", "max_rows": 8},
        "train": {"micro_batch_size": 2, "effective_batch_size": 2, "max_length": 64, "max_steps": 4,
                  "eval_steps": 2, "save_steps": 2, "logging_steps": 1, "eval_max_examples": 2},
    }))  # fmt: skip
    ref, run = tmp / "ref", tmp / "run"
    rng = random.Random(TRAIN_SEED)
    point = rng.choice(["started", "first-log", "checkpoint-2", "checkpoint-4"])
    delay = rng.uniform(0, 1.5)
    ready = {
        "started": lambda: (run / "run.json").is_file(),
        "first-log": lambda: n_lines(run / "metrics.jsonl") >= 1,
        "checkpoint-2": lambda: (run / "checkpoint-2").is_dir(),
        "checkpoint-4": lambda: (run / "checkpoint-4").is_dir(),
    }[point]
    ref_proc = launch(["train", str(cfg), "--out", str(ref), "--no-progress"], tmp / "ref.log")
    victim = launch(["train", str(cfg), "--out", str(run), "--no-progress"], tmp / "run.log")
    out: dict = {}
    killer = threading.Thread(target=kill_when, args=(victim, ready, delay, out))
    killer.start()
    yield {"tmp": tmp, "cfg": cfg, "ref": ref, "run": run, "ref_proc": ref_proc, "victim": victim, "killer": killer, "out": out,
           "point": f"{point} +{delay:.2f}s"}  # fmt: skip
    for proc in (ref_proc, victim):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_training_killed_at_a_random_point_resumes_to_the_same_end(
    training: dict, figures: Counter, notes: list
) -> None:
    tmp, ref, run = training["tmp"], training["ref"], training["run"]
    training["killer"].join(timeout=400)
    finish(training["ref_proc"], tmp / "ref.log")
    assert training["out"].get("killed"), f"training finished before its kill point ({training['point']})"
    assert not survivors()
    no_partial_files(run)
    proc = launch(
        ["train", str(training["cfg"]), "--out", str(run), "--resume", "--no-progress"], tmp / "resume.log"
    )
    finish(proc, tmp / "resume.log")

    want_info, got_info = (json.loads((d / "run.json").read_text()) for d in (ref, run))
    assert got_info["status"] == want_info["status"] == "complete"
    assert got_info["final_step"] == want_info["final_step"] == 4
    want_log, got_log = (json.loads((d / "log.json").read_text()) for d in (ref, run))
    assert [r["step"] for r in got_log] == [r["step"] for r in want_log] == [2, 4]
    for got, want in zip(got_log, want_log, strict=True):
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-3)
        assert got["tokens_seen"] == want["tokens_seen"]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    figures["crashes_survived"] += 1
    figures["kills_training"] += 1
    notes.append(f"kill point (train): {training['point']}")
