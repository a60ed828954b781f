"""LiveCodeBench problems: local JSONL rows, the shipped `builtin:` sets, or the hub dataset by release tag."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codetune.bench.config import DEFAULT_RELEASE, ProblemFilter
from codetune.errors import CodetuneError
from codetune.files import loads_text, not_found
from codetune.hub import failure, go_offline_if_unreachable

HUB_REPO = "livecodebench/code_generation_lite"
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
HUB_FILES = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl"]
STR_FIELDS = ("question_title", "question_content", "platform", "question_id", "contest_id", "contest_date",
              "starter_code", "difficulty")  # fmt: skip
TEST_TYPES = ("stdin", "functional")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Test:
    __test__ = False  # not a pytest class

    input: str
    output: str
    testtype: str  # "stdin" | "functional"


@dataclass(frozen=True)
class Problem:
    question_id: str
    question_title: str
    question_content: str
    platform: str
    contest_id: str
    contest_date: str
    starter_code: str
    difficulty: str
    public_tests: tuple[Test, ...]
    private_tests: tuple[Test, ...]
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def tests(self) -> tuple[Test, ...]:
        return self.public_tests + self.private_tests


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only str/bytes/numbers and plain containers: any global lookup (how pickles run code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids")


def restricted_loads(data: bytes) -> Any:
    """`pickle.loads` that can only build plain data; a malicious pickle raises before anything is executed."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as e:  # malformed opcodes on plain data (REDUCE on None, unhashable keys): no traceback
        raise pickle.UnpicklingError(f"malformed pickle: {type(e).__name__}: {e}") from None


_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?([T ]|$)")


def decode_tests(raw: Any, where: str, name: str) -> tuple[Test, ...]:
    """Decode a test-case field: a JSON string (or list), or LiveCodeBench's base64(zlib(pickle(JSON string)))."""
    data = raw
    if isinstance(raw, str):
        try:
            data = loads_text(raw, f"{where}: field '{name}'")
        except RecursionError:
            raise CodetuneError(f"{where}: field '{name}' is JSON nested too deeply") from None
        except ValueError:  # not JSON (or a number too long to convert): try LiveCodeBench's encoding
            try:
                inner = restricted_loads(
                    zlib.decompress(base64.b64decode(raw.encode("ascii"), validate=True))
                )
            except (pickle.UnpicklingError, ValueError, zlib.error, EOFError, UnicodeEncodeError) as e:
                raise CodetuneError(
                    f"{where}: field '{name}' is neither JSON nor base64+zlib+pickle ({e})"
                ) from None
            try:
                if isinstance(inner, bytes):
                    inner = inner.decode("utf-8")
                data = loads_text(inner, f"{where}: field '{name}'") if isinstance(inner, str) else inner
            except (ValueError, RecursionError) as e:
                why = getattr(e, "msg", None) or type(e).__name__
                raise CodetuneError(f"{where}: field '{name}' decodes to invalid JSON ({why})") from None
    if not isinstance(data, list):
        raise CodetuneError(f"{where}: field '{name}' must be a list of tests, got {type(data).__name__}")
    tests = []
    for i, t in enumerate(data):
        if not isinstance(t, dict) or not all(isinstance(t.get(k), str) for k in ("input", "output")):
            raise CodetuneError(f"{where}: field '{name}'[{i}] needs string 'input' and 'output'")
        testtype = t.get("testtype", "stdin")
        if testtype not in TEST_TYPES:
            raise CodetuneError(
                f"{where}: field '{name}'[{i}].testtype must be stdin or functional, got {testtype!r}"
            )
        tests.append(Test(t["input"], t["output"], testtype))
    return tuple(tests)


def parse_row(row: dict, where: str) -> Problem:
    """One LiveCodeBench row -> Problem; errors name `where` (file:line) and the field."""
    for name in STR_FIELDS:
        if name not in row:
            raise CodetuneError(f"{where}: missing field '{name}'")
        if not isinstance(row[name], str):
            raise CodetuneError(f"{where}: field '{name}' must be a string, got {type(row[name]).__name__}")
    for name in ("public_test_cases", "private_test_cases"):
        if name not in row:
            raise CodetuneError(f"{where}: missing field '{name}'")
    meta = row.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta) if meta.strip() else {}
        except (ValueError, RecursionError):
            raise CodetuneError(f"{where}: field 'metadata' is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CodetuneError(f"{where}: field 'metadata' must be a JSON object")
    if not row["question_id"].strip():
        raise CodetuneError(f"{where}: field 'question_id' is empty")
    if row["contest_date"] and not _DATE.match(row["contest_date"]):
        raise CodetuneError(
            f"{where}: field 'contest_date' {row['contest_date'][:40]!r} is not a date (YYYY-MM-DD...)"
        )
    public = decode_tests(row["public_test_cases"], where, "public_test_cases")
    private = decode_tests(row["private_test_cases"], where, "private_test_cases")
    if not public and not private:
        raise CodetuneError(f"{where}: problem {row['question_id']!r} has no tests (public_test_cases and "
                            "private_test_cases are both empty): nothing could grade it")  # fmt: skip
    problem = Problem(
        **{name: row[name] for name in STR_FIELDS},
        public_tests=public,
        private_tests=private,
        metadata=meta,
    )
    if any(t.testtype == "functional" for t in public + private) and function_name(problem) is None:
        raise CodetuneError(f"{where}: problem {row['question_id']!r} has functional tests but no method to call "
                            "(field 'metadata' has no func_name and 'starter_code' no `def name(self, ...)`)")  # fmt: skip
    return problem


def read_problem_file(path: str | Path) -> list[Problem]:
    """Parse a LiveCodeBench JSONL file; a duplicate id or a malformed row raises a one-line error (file:line)."""
    path = Path(path)
    if not path.is_file():
        raise CodetuneError(not_found(path, "problem file"))
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = loads_text(raw.decode("utf-8"), where)
        except (ValueError, RecursionError) as e:  # also: invalid UTF-8, too-long numbers, too-deep nesting
            why = getattr(e, "msg", None) or (
                "invalid UTF-8" if isinstance(e, UnicodeDecodeError) else type(e).__name__
            )
            raise CodetuneError(f"{where}: not a JSON object ({why})") from None
        if not isinstance(row, dict):
            raise CodetuneError(f"{where}: expected a JSON object, got {type(row).__name__}")
        p = parse_row(row, where)
        if p.question_id in seen:
            raise CodetuneError(
                f"{where}: field 'question_id' {p.question_id!r} repeats line {seen[p.question_id]}"
            )
        seen[p.question_id] = lineno
        problems.append(p)
    if not problems:
        raise CodetuneError(f"{path}: no problems (the file has no rows)")
    return problems


def release_files(release: str) -> list[str]:
    """Which hub files a LiveCodeBench release tag covers: release_vN = test..testN, vN = one file, vA_vB = A..B."""
    tag = release.strip()
    if tag == "release_latest":
        return list(HUB_FILES)
    if m := re.fullmatch(r"release_v(\d)", tag):
        n = int(m.group(1))
        if 1 <= n <= len(HUB_FILES):
            return HUB_FILES[:n]
    if m := re.fullmatch(r"v(\d)(?:_v(\d))?", tag):
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if 1 <= a <= b <= len(HUB_FILES):
            return HUB_FILES[a - 1 : b]
    raise CodetuneError(
        f"release: unknown LiveCodeBench release {release!r}; use release_v1..release_v{len(HUB_FILES)}, "
        "release_latest, vN or vA_vB (e.g. v4_v5)"
    )


def _hub_problems(repo: str, release: str) -> list[Problem]:
    files = release_files(release)
    go_offline_if_unreachable()
    from huggingface_hub import hf_hub_download

    problems: list[Problem] = []
    for name in files:
        try:
            local = hf_hub_download(repo_id=repo, filename=name, repo_type="dataset")
        except Exception as e:  # offline, missing file, auth: all reported the same way
            fix = "pass a local LiveCodeBench JSONL file or builtin:quickstart"
            raise CodetuneError(f"problems: {failure(f'cannot download {name} of {repo}', e, fix)}") from None
        problems.extend(read_problem_file(local))
    return problems


def _check_month(value: str | None, name: str) -> None:
    if value is not None and not _MONTH.match(value):
        raise CodetuneError(f"filter.{name}: expected a month like 2024-08, got {value!r}")


def apply_filter(problems: list[Problem], filt: ProblemFilter | None) -> list[Problem]:
    """Keep problems matching platform, difficulty, contest month range and ids; then the first `limit`."""
    if filt is None:
        return problems
    _check_month(filt.start, "start")
    _check_month(filt.end, "end")
    if filt.ids:
        unknown = sorted(set(filt.ids) - {p.question_id for p in problems})
        if unknown:
            raise CodetuneError(f"filter.ids: unknown question ids: {', '.join(unknown[:5])}")
    plat = {s.lower() for s in filt.platform} if filt.platform else None
    diff = {s.lower() for s in filt.difficulty} if filt.difficulty else None
    ids = set(filt.ids) if filt.ids else None
    if filt.start and filt.end and filt.start > filt.end:
        raise CodetuneError(
            f"filter.start {filt.start} is after filter.end {filt.end}: no month is in between"
        )
    month = lambda p: p.contest_date[:7]  # noqa: E731
    steps = (  # (filter, keeps a problem, what the message lists)
        (
            "platform",
            lambda p: plat is None or p.platform.lower() in plat,
            ("platforms", lambda p: p.platform),
        ),
        (
            "difficulty",
            lambda p: diff is None or p.difficulty.lower() in diff,
            ("difficulties", lambda p: p.difficulty),
        ),
        ("start", lambda p: filt.start is None or month(p) >= filt.start, ("contest months", month)),
        ("end", lambda p: filt.end is None or month(p) <= filt.end, ("contest months", month)),
        ("ids", lambda p: ids is None or p.question_id in ids, ("ids", lambda p: p.question_id)),
    )
    kept = problems
    for name, keep, (label, value) in steps:
        left = [p for p in kept if keep(p)]
        if kept and not left:  # the filter that empties the set, and what the set held
            seen = sorted({str(value(p)) for p in kept})
            shown = ", ".join(seen) if len(seen) <= 6 else f"{seen[0]} .. {seen[-1]}"
            raise CodetuneError(
                f"filter.{name} {getattr(filt, name)!r} (--{name}): none of the {len(kept)} problems matches "
                f"(their {label}: {shown})"
            )
        kept = left
    return kept[: filt.limit] if filt.limit else kept


def is_hub_source(source: str) -> bool:
    """Whether `source` names a hub dataset (owner/name) rather than a built-in set or a local file."""
    if source.startswith("builtin:") or Path(source).expanduser().exists():
        return False
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", source)) and not source.endswith((".jsonl", ".json"))


def load_problems(
    source: str, filt: ProblemFilter | None = None, release: str | None = None
) -> list[Problem]:
    """Load problems from a JSONL path, `builtin:<name>`, or a hub dataset id at a release (default: the study's),
    then filter."""
    if source.startswith("builtin:"):
        name = source.split(":", 1)[1]
        path = BUILTIN_DIR / f"{name}.jsonl"
        if not name or not path.is_file():
            known = ", ".join(f"builtin:{p.stem}" for p in sorted(BUILTIN_DIR.glob("*.jsonl")))
            raise CodetuneError(f"problems: unknown built-in set {source!r}; known: {known}")
        problems = read_problem_file(path)
    elif Path(source).expanduser().exists():
        problems = read_problem_file(Path(source).expanduser())
    elif is_hub_source(source):
        problems = _hub_problems(source, release or DEFAULT_RELEASE)
    else:
        raise CodetuneError(
            f"problems: {source}: file not found (expected a JSONL file, builtin:quickstart or {HUB_REPO})"
        )
    return apply_filter(problems, filt)


def problems_fingerprint(problems: list[Problem]) -> str:
    """sha256 over question ids and every test (input, output, type): changes when the graded set changes."""
    h = hashlib.sha256()
    for p in problems:
        payload = [p.question_id, [[t.input, t.output, t.testtype] for t in p.tests]]
        h.update(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def function_name(problem: Problem) -> str | None:
    """The method a functional test calls: metadata `func_name`, else the first method in the starter code."""
    name = problem.metadata.get("func_name")
    if isinstance(name, str) and name:
        return name
    m = re.search(r"def\s+(\w+)\s*\(\s*self", problem.starter_code)
    return m.group(1) if m else None
