"""Hostile programs: each gets a verdict, the harness survives, nothing outside the sandbox changes, no stray process."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psutil
import pytest

from codetune.bench import grade
from codetune.bench.grade import grade_all
from codetune.bench.problems import Problem, Test
from codetune.bench.sandbox import Sandbox, isolation_report

HOSTILE = {
    "infinite_loop": "while True:\n    pass\n",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "alloc_20gb": "x = bytearray(20 * 2**30)\nprint(len(x))\n",
    "write_outside": (
        "import os\nfor path in TARGETS:\n    try:\n        with open(path, 'w') as f:\n            f.write('pwned')\n"
        "    except OSError as e:\n        print('denied', type(e).__name__)\nprint(1)\n"
    ),
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint(1)\n",
    "kill_everyone": "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint(1)\n",
    "orphan_sleeper": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(300)\n"
        "    os._exit(0)\nprint(1)\n"
    ),
    "output_flood": "while True:\n    print('x' * 10000)\n",
    "os_exit": "import os\nos._exit(7)\n",
    "recursion_bomb": "def f(n):\n    return f(n + 1) + 1\nf(0)\n",
    "unbounded_recursion": "import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
    "sockets": (
        "import socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('1.1.1.1', 80))\n    print('online')\n"
        "except OSError as e:\n    print(1)\n"
    ),
}


class RecordingSandbox(Sandbox):
    uids: list[int] = []

    def __init__(self) -> None:
        super().__init__()
        if self.isolation["uid"] is not None:
            RecordingSandbox.uids.append(self.isolation["uid"])


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict:
    victim = tmp_path_factory.mktemp("victim") / "precious.txt"
    victim.write_text("original")
    victim.chmod(0o666)  # writable by anyone: only the sandbox's own barriers protect it
    victim.parent.chmod(0o777)
    tmp_new = Path("/tmp") / f"codetune-hostile-{uuid.uuid4().hex}"
    targets = [str(victim), str(tmp_new), "../escaped.txt", "/escaped-at-root.txt"]
    gens = {name: [code.replace("TARGETS", repr(targets))] for name, code in HOSTILE.items()}
    probs = [Problem(n, n, "", "x", "", "", "", "easy", (Test("", "1\n", "stdin"),), (), {}) for n in HOSTILE]
    mp = pytest.MonkeyPatch()
    mp.setattr(grade, "Sandbox", RecordingSandbox)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    try:
        rows = grade_all(probs, gens, timeout=2.0, memory_mb=512, workers=2, progress=False)
    finally:
        mp.undo()
    return {
        "rows": {r["question_id"]: r for r in rows},
        "victim": victim,
        "tmp_new": tmp_new,
        "before": before,
    }


def verdict(outcome: dict, name: str) -> str:
    return outcome["rows"][name]["metadata"][0]["verdicts"][0]["verdict"]


def test_every_hostile_program_gets_a_verdict(outcome: dict) -> None:
    assert set(outcome["rows"]) == set(HOSTILE)
    assert verdict(outcome, "infinite_loop") == "time_limit"
    assert verdict(outcome, "fork_bomb") == "time_limit"
    assert verdict(outcome, "alloc_20gb") == "memory_limit"
    assert verdict(outcome, "output_flood") == "runtime_error"
    assert "output limit" in outcome["rows"]["output_flood"]["metadata"][0]["verdicts"][0]["stderr"]
    assert verdict(outcome, "os_exit") == "runtime_error"
    assert verdict(outcome, "recursion_bomb") == "runtime_error"
    assert verdict(outcome, "unbounded_recursion") in {"runtime_error", "memory_limit", "time_limit"}
    assert verdict(outcome, "orphan_sleeper") == "accepted"


def test_isolation_guarantees_hold(outcome: dict) -> None:
    rep = isolation_report()
    if rep["uid"] is not None:  # cannot signal its worker, nor anything else
        assert verdict(outcome, "kill_parent") == "runtime_error"
        assert verdict(outcome, "kill_everyone") in {"accepted", "runtime_error"}  # it can only hit itself
    if rep["network_isolated"]:
        assert verdict(outcome, "sockets") == "accepted"
    if rep["fs_protected"]:
        assert outcome["victim"].read_text() == "original"
        assert not outcome["tmp_new"].exists()
        assert not Path("/escaped-at-root.txt").exists()


def test_no_stray_process_survives(outcome: dict) -> None:
    mine = {p.pid for p in psutil.Process().children(recursive=True)} - outcome["before"]
    assert not mine
    strays = [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in
              RecordingSandbox.uids]  # fmt: skip
    assert not strays
    assert os.getpid()  # the harness is still here
