"""The sandbox worker: real stdin, fresh process and directory per test, limits, overlap, the isolation report."""

from __future__ import annotations

import socket
import time

import pytest

from codetune.bench.grade import grade_all
from codetune.bench.problems import Problem, Test
from codetune.bench.sandbox import Sandbox, isolation_report


@pytest.fixture(scope="module")
def sb():
    with Sandbox() as s:
        yield s


def run(sb: Sandbox, code: str, stdin: str = "", timeout: float = 2.0, **kw):
    sb.load(code, kw.pop("fn", None))
    return sb.run(stdin, timeout=timeout, **kw)


@pytest.mark.parametrize(
    "code",
    [
        "for line in sys.stdin:\n    print(sum(map(int, line.split())))\n",
        "print(*(sum(map(int, l.split())) for l in open(0)), sep='\\n')\n",
        "import sys\nfor l in sys.stdin.buffer.read().decode().splitlines():\n    print(sum(map(int, l.split())))\n",
        "import os\nprint(*(sum(map(int, l.split())) for l in os.read(0, 1000).decode().splitlines()), sep='\\n')\n",
        "print(sum(map(int, input().split())))\nprint(sum(map(int, input().split())))\n",
        "def main():\n    for l in stdin:\n        print(sum(map(int, l.split())))\nif __name__ == '__main__':\n    main()\n",
    ],
)
def test_programs_read_real_stdin(sb: Sandbox, code: str) -> None:
    r = run(sb, code, "1 2\n3 4\n")
    assert (r.failure, r.stdout) == (None, "3\n7\n"), r.stderr


def test_each_test_gets_a_fresh_process_and_directory(sb: Sandbox) -> None:
    code = (
        "import os, random\nprint(sorted(os.listdir('.')), os.getpid(), random.random())\n"
        "open('left.txt', 'w').write('x')\n"
    )
    a, b = run(sb, code), sb.run("", timeout=2)
    assert a.stdout.startswith("[] ") and b.stdout.startswith("[] ")
    assert a.stdout.split()[1:] != b.stdout.split()[1:]  # other pid, reseeded random


def test_minimal_environment_and_threads(sb: Sandbox) -> None:
    r = run(sb, "import os\nprint(sorted(os.environ))\n")
    assert "HOME" in r.stdout and "PYTHONPATH" not in r.stdout and "VIRTUAL_ENV" not in r.stdout
    threaded = "import threading\ndef main():\n    print(input())\nthreading.Thread(target=main).start()\n"
    assert run(sb, threaded, "hi\n").stdout == "hi\n"


def test_exit_codes_and_exit_paths(sb: Sandbox) -> None:
    assert run(sb, "print(1)\nexit()\n").failure is None
    assert run(sb, "import sys\nprint(1)\nsys.exit(0)\n").stdout == "1\n"
    assert run(sb, "import sys\nsys.exit(3)\n").failure == "runtime_error"
    assert run(sb, "import sys\nsys.exit('bad input')\n").stderr.strip() == "bad input"
    r = run(sb, "import os\nos._exit(0)\n")
    assert r.failure is None and r.stdout == ""


def test_functional_call(sb: Sandbox) -> None:
    code = "class Solution:\n    def f(self, a: List[int], k: int) -> Tuple[int, int]:\n        return (sum(a), k)\n"
    r = run(sb, code, "[1, 2]\n5\n", fn="f")
    assert r.failure is None and r.result == "[3, 5]"


def test_limits(sb: Sandbox) -> None:
    t = time.monotonic()
    r = run(sb, "x = bytearray(4 * 2**30)\n", memory_mb=256)
    assert r.failure == "memory_limit" and time.monotonic() - t < 1.5
    r = run(sb, "import time\ntime.sleep(30)\n", timeout=0.5)
    assert r.failure == "time_limit" and 0.5 <= r.time < 2
    r = run(sb, "import sys\nsys.stdout.write('y' * (64 << 20))\n")
    assert r.failure == "runtime_error" and r.output_truncated and len(r.stdout) <= 32 << 20


FORK_AND_ALLOCATE = """
import os
kids = []
for _ in range(KIDS):
    pid = os.fork()
    if pid == 0:
        x = bytearray(MB << 20)
        for i in range(0, len(x), 4096):
            x[i] = 1
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("done")
"""


def test_memory_cgroup_caps_all_processes_of_a_program_together(sb: Sandbox) -> None:
    """Each child stays under the per-process limit; together they exceed it (where a memory cgroup exists)."""
    if sb.isolation["memory_cgroup"] is None:
        pytest.skip("no memory cgroup on this machine (see docs/SANDBOX.md)")
    hog = FORK_AND_ALLOCATE.replace("KIDS", "6").replace("MB", "100")
    r = run(sb, hog, memory_mb=256, timeout=5)
    assert r.failure == "memory_limit" and r.oom_killed
    small = FORK_AND_ALLOCATE.replace("KIDS", "3").replace("MB", "20")
    r = run(sb, small, memory_mb=256, timeout=5)
    assert r.failure is None and r.stdout == "done\n" and not r.oom_killed
    r = run(sb, hog, memory_mb=1024, timeout=5)  # the limit follows each test's memory_mb, up as well as down
    assert r.failure is None and r.stdout == "done\n"


def test_time_limits_overlap_across_workers() -> None:
    probs = [
        Problem(f"p{i}", "", "", "x", "", "", "", "easy", (Test("", "1\n", "stdin"),), (), {})
        for i in range(2)
    ]
    t = time.monotonic()
    rows = grade_all(probs, {p.question_id: ["while True: pass"] for p in probs}, timeout=1.5, workers=2,
                     progress=False)  # fmt: skip
    assert [r["metadata"][0]["verdicts"][0]["verdict"] for r in rows] == ["time_limit"] * 2
    assert time.monotonic() - t < 2.9  # sequential would be >= 3 s


def test_isolation_report_matches_behaviour(sb: Sandbox) -> None:
    rep = isolation_report()
    assert rep["process_per_test"] and rep["new_session"] and "as" in rep["rlimits"]
    assert ("nproc" in rep["rlimits"]) == (rep["uid"] is not None)  # RLIMIT_NPROC is set only with an own uid
    if rep["network_isolated"]:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        code = (
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', PORT), timeout=1)\n    print('reached')\n"
            "except OSError:\n    print('isolated')\n"
        ).replace("PORT", str(port))
        assert run(sb, code).stdout == "isolated\n"
        srv.close()
    if rep["uid"] is not None:  # a uid of its own per worker
        uid = sb.isolation["uid"]
        assert run(sb, "import os\nprint(os.getuid(), os.geteuid())\n").stdout.split() == [str(uid)] * 2
