"""Loading LiveCodeBench problems: rows, encodings, the restricted unpickler, filters, the hub path (mocked)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from codetune.bench import problems as P
from codetune.bench.config import ProblemFilter
from codetune.bench.problems import load_problems, problems_fingerprint, release_files
from codetune.errors import CodetuneError


def lcb_row(qid: str, **kw) -> dict:
    row = {
        "question_title": f"T {qid}", "question_content": "Print the sum.", "platform": "atcoder",
        "question_id": qid, "contest_id": "abc1", "contest_date": "2024-09-07T00:00:00", "starter_code": "",
        "difficulty": "easy",
        "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
        "private_test_cases": json.dumps([{"input": "2 2\n", "output": "4\n", "testtype": "stdin"}]),
        "metadata": "{}",
    }  # fmt: skip
    row.update(kw)
    return row


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def encode_private(obj) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(obj)))).decode()


def test_rows_parse_into_problems(tmp_path: Path) -> None:
    tests = [{"input": "[1, 2]\n3", "output": "[0, 1]", "testtype": "functional"}]
    f = write(tmp_path / "p.jsonl", [
        lcb_row("abc1_a"),
        lcb_row("lc_1", platform="leetcode", starter_code="class Solution:\n    def twoSum(self, a, t):\n",
                public_test_cases=json.dumps(tests), private_test_cases=encode_private(tests * 2),
                metadata='{"func_name": "twoSum"}'),
    ])  # fmt: skip
    a, b = load_problems(str(f))
    assert a.question_id == "abc1_a" and a.public_tests[0].output == "3\n" and len(a.tests) == 2
    assert b.private_tests[1].testtype == "functional" and len(b.tests) == 3
    assert b.metadata == {"func_name": "twoSum"} and P.function_name(b) == "twoSum"
    assert P.function_name(P.Problem(**{**b.__dict__, "metadata": {}})) == "twoSum"  # from the starter code


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    payload = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    f = write(tmp_path / "p.jsonl", [lcb_row("x", private_test_cases=payload)])
    with pytest.raises(
        CodetuneError, match=r"p\.jsonl:1: field 'private_test_cases'.*refusing to load global"
    ):
        load_problems(str(f))
    assert not marker.exists()
    # plain data goes through
    assert P.restricted_loads(pickle.dumps({"a": [1, 2.5, b"x", ("t",)]})) == {"a": [1, 2.5, b"x", ("t",)]}


@pytest.mark.parametrize(
    "row,match",
    [
        (lcb_row("x", question_id=None), r":2: field 'question_id' must be a string"),
        ({k: v for k, v in lcb_row("x").items() if k != "difficulty"}, r":2: missing field 'difficulty'"),
        (lcb_row("x", public_test_cases='[{"input": 1}]'), r":2: field 'public_test_cases'\[0\]"),
        (lcb_row("x", private_test_cases="not json, not base64!"), r":2: field 'private_test_cases'"),
        (lcb_row("x", metadata="{oops"), r":2: field 'metadata'"),
        (
            lcb_row("x", public_test_cases=json.dumps([{"input": "", "output": "", "testtype": "x"}])),
            r":2: field .public_test_cases.\[0\]\.testtype",
        ),
        (lcb_row("a"), r":2: field 'question_id' 'a' repeats line 1"),
        ("{not json", r":2: not a JSON object"),
        (lcb_row("x", public_test_cases="[]", private_test_cases="[]"), r":2: problem 'x' has no tests"),
        (lcb_row("x", contest_date="not-a-date"), r":2: field 'contest_date' 'not-a-date' is not a date"),
        (
            lcb_row(
                "x", private_test_cases=json.dumps([{"input": "1", "output": "2", "testtype": "functional"}])
            ),
            r":2: problem 'x' has functional tests but no method to call \(field 'metadata' has no func_name",
        ),
    ],
)
def test_malformed_rows_name_file_line_and_field(tmp_path: Path, row, match: str) -> None:
    f = write(tmp_path / "bad.jsonl", [lcb_row("a"), row])
    with pytest.raises(CodetuneError, match=r"bad\.jsonl" + match):
        load_problems(str(f))


def test_filters(tmp_path: Path) -> None:
    f = write(tmp_path / "p.jsonl", [
        lcb_row("a1", contest_date="2024-07-31T00:00:00"),
        lcb_row("a2", contest_date="2024-08-01T00:00:00"),
        lcb_row("a3", contest_date="2025-02-28T00:00:00", difficulty="medium"),
        lcb_row("l1", contest_date="2024-10-01T00:00:00", platform="leetcode"),
    ])  # fmt: skip
    ids = lambda **kw: [p.question_id for p in load_problems(str(f), ProblemFilter(**kw))]  # noqa: E731
    assert ids(start="2024-08", end="2025-02") == ["a2", "a3", "l1"]
    assert ids(platform=["AtCoder"], difficulty=["easy"]) == ["a1", "a2"]
    assert ids(ids=["l1", "a1"]) == ["a1", "l1"]
    assert ids(limit=2, start="2024-08") == ["a2", "a3"]
    with pytest.raises(CodetuneError, match="filter.start"):  # a filter built without validation
        load_problems(str(f), ProblemFilter.model_construct(start="2024-8", end=None))
    with pytest.raises(CodetuneError, match="filter.ids: unknown question ids: zz"):
        ids(ids=["zz"])
    # a filter that leaves nothing is named, with what the set held at that point
    for kw, message in (
        (
            {"platform": ["atcodr"]},
            r"filter.platform \['atcodr'\] \(--platform\): none of the 4 problems matches \(their platforms: atcoder, leetcode\)",
        ),
        (
            {"platform": ["leetcode"], "difficulty": ["medium"]},
            r"filter.difficulty .*none of the 1 problems .*difficulties: easy\)",
        ),
        (
            {"start": "2025-03"},
            r"filter.start '2025-03' .*contest months: 2024-07, 2024-08, 2024-10, 2025-02\)",
        ),
        ({"start": "2025-03", "end": "2025-01"}, r"filter.start 2025-03 is after filter.end 2025-01"),
    ):
        with pytest.raises(CodetuneError, match=message):
            ids(**kw)


def test_fingerprint_tracks_ids_and_tests(tmp_path: Path) -> None:
    a = load_problems(str(write(tmp_path / "a.jsonl", [lcb_row("a"), lcb_row("b")])))
    b = load_problems(str(write(tmp_path / "b.jsonl", [lcb_row("a"), lcb_row("b", question_title="other")])))
    c = load_problems(str(write(tmp_path / "c.jsonl", [lcb_row("a"), lcb_row("b", private_test_cases="[]")])))
    assert problems_fingerprint(a) == problems_fingerprint(b) != problems_fingerprint(c)
    assert len(problems_fingerprint(a)) == 64 and problems_fingerprint(a) != problems_fingerprint(a[:1])


def test_release_tags() -> None:
    assert release_files("release_v1") == ["test.jsonl"]
    assert release_files("release_v5")[-1] == "test5.jsonl" and len(release_files("release_v5")) == 5
    assert release_files("v4_v5") == ["test4.jsonl", "test5.jsonl"]
    assert release_files("v2") == ["test2.jsonl"]
    assert len(release_files("release_latest")) == 6
    with pytest.raises(CodetuneError, match="release: unknown LiveCodeBench release 'v9'"):
        release_files("v9")


def test_hub_download_is_mocked_at_the_library_boundary(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    calls = []

    def fake_download(repo_id: str, filename: str, repo_type: str) -> str:
        calls.append((repo_id, filename, repo_type))
        return str(write(tmp_path / filename, [lcb_row(f"{filename}-q")]))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    got = load_problems(P.HUB_REPO, release="v4_v5")
    assert [p.question_id for p in got] == ["test4.jsonl-q", "test5.jsonl-q"]
    assert calls == [(P.HUB_REPO, "test4.jsonl", "dataset"), (P.HUB_REPO, "test5.jsonl", "dataset")]

    def offline(**kw):
        raise OSError("Network is unreachable\nmore detail")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr("codetune.hub._checked", False)  # online: the library's first line is the reason
    with pytest.raises(
        CodetuneError, match=r"cannot download test\.jsonl .*Network is unreachable\); pass a"
    ):
        load_problems(P.HUB_REPO, release="release_v1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        CodetuneError, match=r"not in the local Hugging Face cache and the hub is unreachable"
    ):
        load_problems(P.HUB_REPO, release="release_v1")


def test_unknown_sources() -> None:
    with pytest.raises(CodetuneError, match="unknown built-in set 'builtin:nope'; known: builtin:quickstart"):
        load_problems("builtin:nope")
    with pytest.raises(CodetuneError, match="missing.jsonl: file not found"):
        load_problems("missing.jsonl")


def test_reference_study_file(lcb41: Path) -> None:
    problems = load_problems(str(lcb41), ProblemFilter(platform=["atcoder"], difficulty=["easy"],
                                                       start="2024-08", end="2025-02"))  # fmt: skip
    assert len(problems) == 41 and sum(len(p.public_tests) for p in problems) == 118
    assert all(not p.private_tests and p.tests for p in problems)


def test_an_empty_problem_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("\n")
    with pytest.raises(CodetuneError, match=r"p\.jsonl: no problems \(the file has no rows\)"):
        load_problems(str(tmp_path / "p.jsonl"))
