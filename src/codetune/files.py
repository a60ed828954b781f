"""Atomic writes, append-safe logs, JSON/JSONL reading with clear errors, and inter-process locks."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from codetune.errors import CodetuneError


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temp file beside `path`, fsync, then rename: readers never see a partial file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CodetuneError(f"{path}: cannot write here ({e.strerror or e})") from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # e.g. the path is a directory, or the disk is full
            raise CodetuneError(f"{path}: cannot write here ({e.strerror or e})") from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record as one line with a single write + fsync, so a kill leaves at most one torn last line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def json_type(value: Any) -> str:
    """A value's type as an error message names it: `null` for None, else the Python type."""
    return "null" if value is None else type(value).__name__


def not_found(path: Path, what: str = "file") -> str:
    """Why `path` can't be read as a `what`: it is missing, or it is a folder where a file is needed (or the reverse)."""
    article = "an" if what[:1] in "aeiou" else "a"
    if what.endswith("folder") and path.is_file():
        return f"{path}: is a file, not {article} {what}"
    if not what.endswith("folder") and path.is_dir():
        return f"{path}: is a folder, not {article} {what}"
    return f"{path}: {what} not found"


def check_out_folder(out: Path, option: str = "--out") -> Path:
    """Refuse, before any long work, an output folder that cannot be made: a file, or a path under a file."""
    if out.exists() and not out.is_dir():
        raise CodetuneError(f"{option} {out}: is a file where a folder is needed")
    if (blocking := next((p for p in out.parents if p.exists() and not p.is_dir()), None)) is not None:
        raise CodetuneError(f"{option} {out}: {blocking} is a file where a folder is needed")
    return out


def refuse_input_as_output(option: str, out: Path, *inputs: str | Path | None) -> None:
    """An output path that names one of the command's inputs would replace that input: refuse it up front."""
    target = out.expanduser().resolve()
    for given in inputs:
        if given is not None and target == Path(given).expanduser().resolve():
            raise CodetuneError(f"{option} {out}: is also an input of this command; give another path")


# a \uD800-\uDFFF escape: JSON allows it alone, but a lone surrogate is not text (no UTF-8 encoding exists)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def lone_surrogate(obj: Any, where: str = "") -> str | None:
    """The key path (`a.b[2]`) of the first string in `obj` holding a lone surrogate, else None."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(the value)"
        return None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        if (found := lone_surrogate(value, path)) is not None:
            return found
    return None


def loads_text(text: str, where: str) -> Any:
    """`json.loads(text)`, refusing a lone surrogate escape (`\\udcff`), which would fail later when written out."""
    obj = json.loads(text)
    if _SURROGATE_ESCAPE.search(text) and (field := lone_surrogate(obj)) is not None:
        raise CodetuneError(
            f"{where}: field '{field}' holds a lone surrogate escape (\\uD800-\\uDFFF), which is not text"
        )
    return obj


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CodetuneError(not_found(path))
    try:
        return loads_text(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as e:
        raise CodetuneError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise CodetuneError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # a number too long to convert, or nesting too deep
        raise CodetuneError(f"{path}: unreadable JSON ({_reason(e)})") from None


def _reason(e: BaseException) -> str:
    if isinstance(e, json.JSONDecodeError):
        return e.msg
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e).split(";")[0]


def iter_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[dict]:
    """Yield one dict per non-blank line. Errors name the file and line.

    With `tolerate_torn_tail`, an unparsable *last* line (a write cut by a kill) is skipped: this is how
    append-only logs written by `append_jsonl` are read back.
    """
    path = Path(path)
    if not path.is_file():
        raise CodetuneError(not_found(path))
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = loads_text(raw.decode("utf-8"), f"{path}:{i + 1}")
        except (ValueError, RecursionError) as e:  # also: numbers too long to convert, nesting too deep
            if tolerate_torn_tail and i == last:
                return
            kind = "not valid UTF-8" if isinstance(e, UnicodeDecodeError) else f"invalid JSON ({_reason(e)})"
            raise CodetuneError(f"{path}:{i + 1}: {kind}") from None
        if not isinstance(obj, dict):
            raise CodetuneError(f"{path}:{i + 1}: expected a JSON object, got {type(obj).__name__}")
        yield obj


def read_jsonl(path: str | Path, **kw: Any) -> list[dict]:
    return list(iter_jsonl(path, **kw))


def write_jsonl(path: str | Path, records: Iterable[dict]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return atomic_write_text(path, text)


@contextmanager
def file_lock(path: str | Path, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock on `<path>.lock` (blocking by default)."""
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock_path), timeout=timeout):
            yield
    except Timeout:
        raise CodetuneError(f"{path}: locked by another codetune process (lock file {lock_path})") from None
