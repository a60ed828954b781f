"""Run untrusted programs safely: `Sandbox` drives one pre-forked worker (`sandbox_worker`) over pipes.

Each `run` executes the loaded program in a fresh child process forked from the warm worker, under rlimits, in
a throwaway directory, as an unprivileged uid and without network where the machine allows; `isolation_report()`
says what is in force here. One `Sandbox` per thread; `codetune.bench.grade` runs several in parallel.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from codetune.bench.frames import recv, send
from codetune.bench.sandbox_program import HEADER
from codetune.bench.sandbox_worker import OUTPUT_CAP

__all__ = ["HEADER", "OUTPUT_CAP", "RunResult", "Sandbox", "SandboxDied", "isolation_report", "kill_uid"]


@dataclass
class RunResult:
    """What one execution did. `failure` is None when it ran to a clean exit within its limits."""

    time: float
    timed_out: bool
    exit_code: int | None
    signal: int | None
    stdout: str
    stderr: str
    result: str | None
    output_truncated: bool
    compile_error: str | None
    # Killed by the memory cgroup: all the program's processes together went over the limit.
    oom_killed: bool = False

    @property
    def failure(self) -> str | None:
        """time_limit | memory_limit | runtime_error | None."""
        if self.timed_out or self.signal == signal.SIGXCPU:
            return "time_limit"
        if self.oom_killed or "MemoryError" in self.stderr:
            return "memory_limit"
        if self.compile_error or self.output_truncated or self.exit_code != 0:
            return "runtime_error"
        return None


class SandboxDied(RuntimeError):
    """The worker process died or stopped answering (the program may have attacked it)."""


class Sandbox:
    """One pre-forked worker. Not thread-safe: use one per thread."""

    def __init__(self) -> None:
        import subprocess

        src = str(Path(__file__).resolve().parents[2])
        boot = f"import sys; sys.path.insert(0, {src!r}); from codetune.bench.sandbox_worker import serve; serve()"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            start_new_session=True, cwd="/",
        )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are pipes
        self._to_worker, self._from_worker = self.proc.stdin, self.proc.stdout
        head, _ = self._recv(time.monotonic() + 60)
        self.isolation: dict = head["isolation"]
        self._code: tuple[str, str | None] | None = None

    def _recv(self, deadline: float) -> tuple[dict, bytes]:
        try:
            return recv(self._from_worker.fileno(), deadline)
        except (EOFError, TimeoutError, OSError, ValueError) as e:
            self.kill()
            raise SandboxDied(str(e)) from None

    def load(self, code: str, fn_name: str | None = None) -> None:
        """Compile `code` in the worker; later `run` calls execute it (as __main__, or `Solution().fn_name(...)`)."""
        try:
            send(self._to_worker.fileno(), {"op": "code", "fn": fn_name}, code.encode("utf-8", "replace"))
        except OSError as e:
            self.kill()
            raise SandboxDied(str(e)) from None
        self._code = (code, fn_name)

    def run(self, stdin: str, *, timeout: float = 6.0, memory_mb: int = 1024) -> RunResult:
        """Execute the loaded program on `stdin` in a fresh child process."""
        if self._code is None:
            raise RuntimeError("Sandbox.run before Sandbox.load")
        try:
            send(self._to_worker.fileno(), {"op": "run", "timeout": timeout, "memory_mb": memory_mb},
                  stdin.encode("utf-8", "replace"))  # fmt: skip
        except OSError as e:
            self.kill()
            raise SandboxDied(str(e)) from None
        head, out = self._recv(time.monotonic() + timeout + 30)
        return RunResult(stdout=out.decode("utf-8", "replace"), **head)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and anything still running under its uid."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        uid = getattr(self, "isolation", {}).get("uid")
        if uid is not None:
            kill_uid(uid)

    def close(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            try:
                self._to_worker.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        for f in (self._to_worker, self._from_worker):
            with contextlib.suppress(OSError):
                f.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kill_uid(uid: int) -> int:
    """SIGKILL every process whose real uid is `uid` (strays of a dead worker); returns how many were found."""
    found = 0
    for _ in range(50):
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/status") as f:
                        line = next(ln for ln in f if ln.startswith("Uid:"))
                    if int(line.split()[1]) == uid:
                        pids.append(int(entry))
                except (OSError, StopIteration, ValueError):
                    continue
        if not pids:
            break
        found += len(pids)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return found


_REPORT: dict | None = None


def isolation_report() -> dict:
    """What isolation a worker gets on this machine (starts one worker once and caches its report)."""
    global _REPORT
    if _REPORT is None:
        with Sandbox() as sb:
            _REPORT = dict(sb.isolation)
    return dict(_REPORT)
