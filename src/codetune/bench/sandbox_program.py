"""What runs a program inside the sandbox: LiveCodeBench's header, the program's environment, and its execution.

The worker (`sandbox_worker`) prepares these once; each forked child only calls `exec_program`. Standard library only.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import linecache
import sys
import traceback
import types

# LiveCodeBench prepends this to every program (lcb_runner/evaluation/testing_util.py): keep it identical.
HEADER = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)
# Not threading: its at-fork hook costs ~1 ms per test; the few programs that use threads import it themselves.
PRELOAD = ("decimal", "fractions", "array", "enum", "types", "atexit")


def modules() -> tuple[str, ...]:
    """What the worker imports before forking: the header's modules and a few more LiveCodeBench programs use."""
    return (
        tuple(line.split()[1] for line in HEADER.splitlines() if line.startswith(("import ", "from ")))
        + PRELOAD
    )


def program_builtins() -> dict:
    """The programs' builtins: the header's names on top of Python's (the same lookups as LiveCodeBench's
    star-imports), made once in the worker so a forked child touches none of these objects (every refcount write in
    a forked child copies a page). Running the header also sets the recursion limit, which children inherit."""
    header: dict = {}
    exec(compile(HEADER, "<header>", "exec"), header)
    names = dict(vars(builtins))
    names.update((k, v) for k, v in header.items() if k != "__builtins__")
    return names


def compile_program(code: str) -> tuple[types.CodeType | None, str]:
    """The program's code object, or None and the error as Python prints it."""
    # Tracebacks then show the program's lines without searching sys.path for "solution.py" once per frame
    # (50,000 frames of a recursion error took seconds).
    linecache.cache["solution.py"] = (len(code), None, code.splitlines(True), "solution.py")
    try:
        return compile(code, "solution.py", "exec"), ""
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as e:
        return None, "".join(traceback.format_exception_only(type(e), e))


def program_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # fmt: skip


def std_streams() -> tuple:
    import io

    return (
        io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), "utf-8"),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), "utf-8"),
        io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), "utf-8", errors="backslashreplace", write_through=True
        ),
    )


def exec_program(
    builtins_ns: dict, streams: tuple, code: types.CodeType | None, fn: str | None, compile_error: str
) -> int:
    """Inside the child: std streams on the redirected fds, then the program as __main__ (or a Solution call)."""
    # the originals too (typeshed marks them final), so a program that restores them still writes to the files
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams  # type: ignore[misc]
    sys.argv = ["solution.py"]
    status = 0
    try:
        if code is None:
            sys.stderr.write(compile_error)
            return 1
        module = types.ModuleType("__main__" if fn is None else "solution")
        ns = module.__dict__
        ns.update(
            __builtins__=builtins_ns, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, argv=sys.argv
        )
        sys.modules[module.__name__] = module
        exec(code, ns)
        if fn is not None:
            args = [json.loads(line) for line in sys.stdin.read().split("\n") if line.strip()]
            result = getattr(ns["Solution"](), fn)(*args)
            try:
                text = json.dumps(result)
            except (TypeError, ValueError):
                text = json.dumps(f"<not JSON: {type(result).__name__}>")
            with open(3, "w", closefd=False) as res:
                res.write(text)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:
            sys.stderr.write(f"{e.code}\n")
            status = 1
    except BaseException as e:
        # The interpreter's own C printer (fast even for 50,000 frames), without this function's frame.
        tb = e.__traceback__
        sys.__excepthook__(type(e), e, tb.tb_next if tb is not None and tb.tb_next is not None else tb)
        status = 1
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()  # join non-daemon threads, as interpreter exit does
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
    except BaseException:
        sys.__excepthook__(*sys.exc_info())
        status = status or 1
    with contextlib.suppress(BaseException):
        sys.stderr.flush()
    return status
