"""The sandbox worker (a fork server): pre-warmed once, it forks one isolated child per test.

At start it imports what LiveCodeBench programs use, enters its own network/IPC/mount namespaces (private tmpfs over
every world-writable directory) when the kernel allows, and picks a uid of its own. Per test it forks a child that
starts a new session, takes rlimits (CPU, address space, file size; processes, files and core=0 are inherited),
drops to that uid, redirects stdin/stdout/stderr to files and runs the compiled code (`sandbox_program`). The
worker enforces the wall-clock limit, kills the child's process group and every leftover process of its uid, and
caps captured output. Protocol: `frames` on fds 0/1; `codetune.bench.sandbox` is the other end. Standard library
only (with `isolation`, its Linux primitives): this is what every test forks from, so it stays small.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import select
import shutil
import signal
import sys
import time
import traceback
import types
from pathlib import Path

from codetune.bench import isolation as iso
from codetune.bench import sandbox_program as program
from codetune.bench.frames import recv, send

OUTPUT_CAP = 32 << 20  # bytes of stdout kept; writing more fails with EFBIG (RLIMIT_FSIZE)
STDERR_TAIL = 2000
MAX_PROCS = 64  # per worker uid, so a fork bomb hits a wall
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock")
UID_BASE = 100_000


class _Worker:
    def __init__(self) -> None:
        self.report: dict = {
            "process_per_test": True,
            "new_session": True,
            "rlimits": ["cpu", "as", "fsize", "nofile", "core=0"],  # + "nproc" with an own uid (below)
            "minimal_env": True,
            "uid": None,  # unprivileged uid of this worker's programs (None: they run as the caller)
            "network_isolated": False,  # own, empty network namespace
            "private_tmp": [],  # world-writable dirs covered by a private tmpfs
            "fs_protected": False,  # programs can write nothing outside their working directory
            "memory_cgroup": None,  # "v1": memory_mb caps all of a program's processes together
            "processes_hidden": False,  # programs see only their own processes in /proc
            "bwrap_installed": shutil.which("bwrap")
            is not None,  # noted only: namespaces are set up directly
        }
        self.code: types.CodeType | None = None
        self.fn: str | None = None
        self.compile_error = ""
        self._setup()

    def _setup(self) -> None:
        iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGKILL)
        iso.prctl(iso.PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the terminal is the harness's to handle
        self.cgroup = iso.memory_cgroup() if os.geteuid() == 0 else None
        self.cgroup_limit = 1 << 40  # MiB: unlimited until the first test sets one
        self.report["memory_cgroup"] = "v1" if self.cgroup else None
        namespaces = False
        if os.geteuid() == 0:
            try:
                iso.unshare(iso.CLONE_NEWNET | iso.CLONE_NEWNS | iso.CLONE_NEWIPC)
                namespaces = True
            except OSError:
                pass
        else:
            uid, gid = os.getuid(), os.getgid()
            try:
                iso.unshare(iso.CLONE_NEWUSER | iso.CLONE_NEWNET | iso.CLONE_NEWNS | iso.CLONE_NEWIPC)
                Path("/proc/self/setgroups").write_text("deny")
                Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
                Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
                namespaces = True
            except OSError:
                pass
        self.report["network_isolated"] = namespaces
        if namespaces:
            try:
                iso.mount("none", "/", None, iso.MS_REC | iso.MS_PRIVATE, None)
                for d in PRIVATE_DIRS:
                    if os.path.isdir(d) and not os.path.islink(d):
                        iso.mount("tmpfs", d, "tmpfs", iso.MS_NOSUID | iso.MS_NODEV, "size=1g,mode=1777")
                        self.report["private_tmp"].append(d)
                self.report["python_exposed"] = iso.expose_python(os.path.join("/tmp", ".codetune-stash"))
            except OSError:
                pass
            with contextlib.suppress(OSError):  # a /proc of our own, where other uids' processes do not show
                iso.mount(
                    "proc", "/proc", "proc", iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC, "hidepid=invisible"
                )
                self.report["processes_hidden"] = True
        if "/tmp" in self.report["private_tmp"]:
            self.base = "/tmp/codetune-sandbox"
            os.makedirs(self.base)
        else:
            import tempfile

            self.base = tempfile.mkdtemp(prefix="codetune-sandbox-")
        self.report["base"] = self.base
        self.io_dir, self.work = os.path.join(self.base, "io"), os.path.join(self.base, "work")
        os.mkdir(self.io_dir, 0o700)
        os.mkdir(self.work, 0o700)
        self.uid = self._probe_uid() if os.geteuid() == 0 else None
        if (
            self.uid is not None
            and "python_exposed" not in self.report
            and any(iso.blocked_ancestor(os.path.realpath(p)) for p in sys.path if p and os.path.isdir(p))
        ):
            self.uid = None  # the interpreter lives where another uid cannot read it, and we cannot remap it
        if self.uid is not None:
            os.chown(self.work, self.uid, self.uid)
        self.report["uid"] = self.uid
        # Unprivileged uid + private tmpfs on every world-writable dir: only the workdir is writable.
        self.report["fs_protected"] = self.uid is not None and "/tmp" in self.report["private_tmp"]
        self.children_file = f"/proc/self/task/{os.getpid()}/children"
        # What every child shares is set here once: env, inheritable limits, no setuid gains, the LCB header.
        os.environ.clear()
        os.environ.update(program.program_env(self.work))
        iso.prctl(iso.PR_SET_NO_NEW_PRIVS, 1)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        if self.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCS, MAX_PROCS))  # counted per uid: the child's
            self.report["rlimits"].insert(3, "nproc")
        for name in program.modules():
            __import__(name)
        self.template = program.program_builtins()
        # over fds 0-2, used only by children after they redirect those fds
        self.streams = program.std_streams()
        gc.collect()
        gc.freeze()

    def _probe_uid(self) -> int | None:
        uid = UID_BASE + os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        return uid if os.waitstatus_to_exitcode(status) == 0 else None

    # -- one test

    def run(self, stdin: bytes, timeout: float, memory_mb: int) -> tuple[dict, bytes]:
        paths = {k: os.path.join(self.io_dir, k) for k in ("in", "out", "err", "res")}
        with open(paths["in"], "wb") as f:
            f.write(stdin)
        fds = {
            k: os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600) for k, p in paths.items() if k != "in"
        }
        oom_before = self._set_cgroup_limit(memory_mb)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self._child(paths["in"], fds, timeout, memory_mb)
        timed_out = False
        pidfd = os.pidfd_open(pid)
        try:
            if not select.select([pidfd], [], [], timeout)[0]:
                timed_out = True
                self._kill_group(pid)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(pidfd)
        elapsed = time.monotonic() - start
        self._sweep()
        oom_killed = self.cgroup is not None and iso.oom_kills(self.cgroup) > oom_before
        out = self._read(fds["out"], 0, OUTPUT_CAP)
        err_size = os.fstat(fds["err"]).st_size
        err = self._read(fds["err"], max(0, err_size - STDERR_TAIL), STDERR_TAIL)
        res_size = os.fstat(fds["res"]).st_size
        result = self._read(fds["res"], 0, res_size).decode("utf-8", "replace") if res_size else None
        out_size = os.fstat(fds["out"]).st_size
        for fd in fds.values():
            os.close(fd)
        self._clean()
        sig = -os.waitstatus_to_exitcode(status) if os.WIFSIGNALED(status) else None
        head = {
            "time": round(elapsed, 4),
            "timed_out": timed_out,
            "exit_code": os.waitstatus_to_exitcode(status) if sig is None else None,
            "signal": sig,
            "stderr": err.decode("utf-8", "replace"),
            "result": result,
            "output_truncated": out_size >= OUTPUT_CAP,
            "compile_error": self.compile_error or None,
            "oom_killed": oom_killed,
        }
        return head, out

    def _set_cgroup_limit(self, memory_mb: int) -> int:
        """Cap this test's processes together at `memory_mb` (no swap); return the cgroup's OOM-kill count so far."""
        if self.cgroup is None:
            return 0
        if memory_mb != self.cgroup_limit:
            # memory + swap may not go below memory: lower memory first, raise memory + swap first.
            names = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
            for name in names if memory_mb < self.cgroup_limit else names[::-1]:
                try:
                    Path(self.cgroup, name).write_text(str(memory_mb << 20))
                except OSError:
                    if name == names[0]:
                        raise
            self.cgroup_limit = memory_mb
        return iso.oom_kills(self.cgroup)

    @staticmethod
    def _read(fd: int, offset: int, size: int) -> bytes:
        return os.pread(fd, size, offset) if size else b""

    def _child(self, in_path: str, fds: dict, timeout: float, memory_mb: int) -> None:
        code = 1
        try:
            if self.cgroup is not None:  # before dropping root: the cgroup files belong to root
                Path(self.cgroup, "cgroup.procs").write_text(str(os.getpid()))
            os.setsid()
            os.dup2(os.open(in_path, os.O_RDONLY), 0)
            os.dup2(fds["out"], 1)
            os.dup2(fds["err"], 2)
            os.dup2(fds["res"], 3)
            os.closerange(4, 1 << 16)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            cpu = int(timeout) + 2
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP, OUTPUT_CAP))
            resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
            os.chdir(self.work)
            if self.uid is not None:
                os.setgroups([])
                os.setresgid(self.uid, self.uid, self.uid)
                os.setresuid(self.uid, self.uid, self.uid)
            iso.prctl(iso.PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
            code = program.exec_program(self.template, self.streams, self.code, self.fn, self.compile_error)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
        finally:
            os._exit(code)

    def _kill_group(self, pid: int) -> None:
        for kill, target in ((os.killpg, pid), (os.kill, pid)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(target, signal.SIGKILL)

    def _children(self) -> list[int]:
        try:
            with open(self.children_file) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _sweep(self) -> None:
        """Kill whatever the program left behind (orphans are re-parented to this subreaper)."""
        for attempt in range(500):
            self._reap()
            kids = self._children()
            if not kids:
                return
            if self.uid is not None:
                self._kill_uid()
            for pid in kids:
                self._kill_group(pid)
            time.sleep(0.0005 * min(attempt, 20))

    def _kill_uid(self) -> None:
        uid = self.uid
        assert uid is not None
        pid = os.fork()
        if pid == 0:
            try:
                os.setresuid(uid, uid, uid)
                for _ in range(10_000):
                    os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)

    def _clean(self) -> None:
        for d in (self.work, *(p for p in self.report["private_tmp"] if p != "/tmp")):
            if os.listdir(d):
                iso.empty_dir(d)
        if "/tmp" in self.report["private_tmp"] and os.listdir("/tmp") != ["codetune-sandbox"]:
            for name in os.listdir("/tmp"):
                if name != "codetune-sandbox":
                    iso.remove(os.path.join("/tmp", name))

    def load(self, code: str, fn: str | None) -> None:
        self.fn = fn
        self.code, self.compile_error = program.compile_program(code)

    def close(self) -> None:
        self._sweep()
        shutil.rmtree(self.base, ignore_errors=True)
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)


def serve() -> None:
    """Worker main loop: frames in on fd 0, results out on fd 1 (see `Sandbox`)."""
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    worker = _Worker()
    send(wfd, {"ready": True, "isolation": worker.report})
    while True:
        try:
            head, blob = recv(rfd)
        except EOFError:
            break
        if head["op"] == "code":
            worker.load(blob.decode("utf-8", "replace"), head.get("fn"))
        elif head["op"] == "run":
            result, out = worker.run(blob, float(head["timeout"]), int(head["memory_mb"]))
            send(wfd, result, out)
    worker.close()
