"""Linux isolation primitives for the sandbox worker: namespaces and mounts through libc, the cgroup-v1 memory group,
exposing the interpreter to an unprivileged uid, emptying the private folders between tests. Standard library only
(the worker imports it before it forks).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x8000000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE = 1, 2, 4, 8, 32, 4096, 8192
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
_libc = ctypes.CDLL(None, use_errno=True)


def check(ret: int) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def unshare(flags: int) -> None:
    check(_libc.unshare(flags))


def prctl(option: int, value: int) -> None:
    check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0))


def mount(src: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)))


CGROUP_PREFIX = "codetune-sandbox-"


def memory_cgroup() -> str | None:
    """A cgroup-v1 memory group of this worker's own, below the one it runs in (None where there is none or it
    cannot be made). Empty groups left by killed workers are removed on the way."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next(
                line.split(":", 2)[2].strip() for line in f if "memory" in line.split(":", 2)[1].split(",")
            )
        parent = os.path.join("/sys/fs/cgroup/memory", rel.lstrip("/"))
        for name in os.listdir(parent):
            owner = name.removeprefix(CGROUP_PREFIX)
            if owner != name and owner.isdigit() and not alive(int(owner)):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, name))
        path = os.path.join(parent, f"{CGROUP_PREFIX}{os.getpid()}")
        os.mkdir(path, 0o755)
    except (OSError, StopIteration):
        return None
    try:
        oom_kills(path)  # fails if the group has no OOM counter: then do without
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another uid
        pass
    return True


def oom_kills(cgroup: str) -> int:
    for line in Path(cgroup, "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    raise ValueError("no oom_kill counter")


def blocked_ancestor(path: str) -> tuple[str, str] | None:
    """The first directory above `path` that others cannot enter, and the name below it on the way to `path`."""
    parts = Path(path).parts
    for i in range(1, len(parts) - 1):
        anc = os.path.join(*parts[: i + 1])
        if not os.stat(anc).st_mode & 0o001:
            return anc, parts[i + 1]
    return None


def expose_python(stash: str) -> list[str]:
    """Inside our mount namespace, make the interpreter's directories readable by the sandbox uid.

    A private directory on the way (e.g. /root, mode 700, holding a pyenv) is covered by a tmpfs that shows only
    the entries Python needs, bind-mounted read-only; everything else in it stays hidden from programs.
    """
    keep: dict[str, set[str]] = {}
    for p in {*sys.path, sys.prefix, sys.base_prefix, os.path.dirname(sys.executable)}:
        if p and os.path.isdir(p) and (hit := blocked_ancestor(os.path.realpath(p))):
            keep.setdefault(hit[0], set()).add(hit[1])
    exposed: list[str] = []
    for anc, names in sorted(keep.items()):
        os.makedirs(stash, exist_ok=True)
        moved = []
        for i, name in enumerate(sorted(names)):
            tmp = os.path.join(stash, f"{len(exposed)}-{i}")
            os.mkdir(tmp)
            mount(os.path.join(anc, name), tmp, None, MS_BIND | MS_REC, None)
            moved.append((tmp, name))
        mount("tmpfs", anc, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for tmp, name in moved:
            target = os.path.join(anc, name)
            os.mkdir(target)
            mount(tmp, target, None, MS_MOVE, None)
            mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
            exposed.append(target)
        mount("none", anc, None, MS_REMOUNT | MS_RDONLY, None)
    shutil.rmtree(stash, ignore_errors=True)
    return exposed


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def empty_dir(d: str) -> None:
    for name in os.listdir(d):
        remove(os.path.join(d, name))
