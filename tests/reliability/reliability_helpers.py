"""Helpers of the fuzz tests: bounded hypothesis settings, a hang guard, the outcome check, shared strategies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from codetune.errors import CodetuneError

# Bounded and reproducible: the same examples in CI every time, nothing written to .hypothesis/.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)  # fmt: skip
HANG_S = 30


@contextlib.contextmanager
def no_hang(seconds: int = HANG_S) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than `seconds` (main thread only)."""

    def fire(signum: int, frame: Any) -> None:
        raise AssertionError(f"hang: still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def attempt(fn: Callable[[], Any], figures: Counter) -> tuple[str, Any]:
    """Run a loader on one input: ("ok", result) or ("error", message) for a one-line CodetuneError.

    Any other exception propagates and fails the test: that is the bug this suite looks for.
    """
    figures["inputs_tried"] += 1
    with no_hang():
        try:
            result = fn()
        except CodetuneError as e:
            msg = str(e)
            assert msg.strip() and "\n" not in msg and "\r" not in msg, repr(msg[:300])
            figures["clean_errors"] += 1
            return "error", msg
    figures["inputs_ok"] += 1
    return "ok", result


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def paths_of(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON-like document, parents before children."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths_of(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_edits: int = 4) -> bytes:
    """`data` after a few random byte edits: overwrite, insert (non-UTF-8 bytes too), delete, truncate."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "set" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = draw(
                st.binary(min_size=1, max_size=6) | st.sampled_from([b"\xff\xfe", b"\x00", b"\n", b"\xc3"])
            )
        elif op == "delete" and buf:
            del buf[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del buf[pos:]
    return bytes(buf)


def cli_env() -> dict[str, str]:
    """Environment for `python -m codetune.cli` subprocesses: offline, single-threaded, no GPU."""
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}  # fmt: skip


def cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "codetune.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=cwd,
    )  # fmt: skip


def assert_one_line_error(proc: subprocess.CompletedProcess, *, mentions: str | None = None) -> str:
    """Exit 2, no traceback, and exactly one `error:` line on stderr; returns that line."""
    err = proc.stderr.strip()
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, lines[-10:]
    if mentions is not None:
        assert mentions in errors[0], errors[0]
    return errors[0]
