"""Fuzzed LiveCodeBench rows through `load_problems`: the problems as encoded, or a one-line error naming file:line."""

from __future__ import annotations

import base64
import json
import pickle
import re
import tempfile
import zlib
from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import FUZZ, attempt, json_values, mutated

from codetune.bench.problems import STR_FIELDS, Problem, Test, load_problems


def lcb_encode(obj: object, protocol: int = 4) -> str:
    """LiveCodeBench's private-test encoding: base64(zlib(pickle(json string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(obj), protocol=protocol))).decode()


tests_st = st.lists(
    st.fixed_dictionaries(
        {"input": st.text(max_size=20), "output": st.text(max_size=20)},
        optional={"testtype": st.sampled_from(["stdin", "functional"])},
    ),
    max_size=3,
)


GOOD_KINDS = ["json", "list", "lcb", "lcb-bytes"]
BAD_KINDS = ["bad-item", "bad-type", "not-list", "bad-base64", "not-zlib", "bad-pickle", "global", "json-object",
             "missing"]  # fmt: skip


@st.composite
def cases_field(draw: st.DrawFn, kind: str) -> tuple[object, tuple[Test, ...] | None, bool]:
    """(raw field value, expected tests or None when the field is invalid, present?)."""
    tests = draw(tests_st)
    expected = tuple(Test(t["input"], t["output"], t.get("testtype", "stdin")) for t in tests)
    if kind == "json":
        return json.dumps(tests), expected, True
    if kind == "list":
        return tests, expected, True
    if kind == "lcb":
        return lcb_encode(tests, draw(st.integers(0, 5))), expected, True
    if kind == "lcb-bytes":  # a pickled bytes object holding the JSON: json.loads takes bytes too
        return (
            base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests).encode(), 4))).decode(),
            expected,
            True,
        )
    if kind == "missing":
        return None, None, False
    no_stop = st.binary(max_size=20).filter(lambda b: b"." not in b)  # never reaches STOP: never valid
    bad: object = {
        "bad-item": lambda: json.dumps(tests + [{"input": draw(st.integers()), "output": "x"}]),
        "bad-type": lambda: json.dumps([{"input": "", "output": "", "testtype": draw(st.text(max_size=8).filter(
            lambda s: s not in ("stdin", "functional")))}]),
        "not-list": lambda: draw(st.integers() | st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
        "bad-base64": lambda: draw(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()[:1] not in "[\"0123456789-{tfn")),
        "not-zlib": lambda: base64.b64encode(draw(st.binary(min_size=1, max_size=30))).decode(),
        "bad-pickle": lambda: base64.b64encode(zlib.compress(b"\x80\x04" + draw(no_stop) + b"\x01")).decode(),
        "global": lambda: base64.b64encode(zlib.compress(b"cos\nsystem\n(S'true'\ntR.")).decode(),
        "json-object": lambda: json.dumps({"input": "1", "output": "2"}),
    }[kind]()  # fmt: skip
    return bad, None, True


META_OK = [None, "", "{}", {}, '{"func_name": "solve"}', {"func_name": "solve"}]
META_BAD = ["[1]", "{oops", 5, [1], "null"]


@st.composite
def lcb_row(draw: st.DrawFn, ids: list[str]) -> tuple[dict, Problem | None]:
    """A row that is well-formed, or (one time in four) broken in one drawn way; with the Problem it must give."""
    row: dict = {name: draw(st.text(max_size=12)) for name in STR_FIELDS}
    row["question_id"] = draw(st.sampled_from(ids))
    row["contest_date"] = draw(st.sampled_from(["", "2024-08-03T00:00:00", "2025-02-01", "2024-11"]))
    row["metadata"] = draw(st.sampled_from(META_OK))
    kinds = {
        "public_test_cases": draw(st.sampled_from(GOOD_KINDS)),
        "private_test_cases": draw(st.sampled_from(GOOD_KINDS)),
    }
    breakage = (
        draw(st.sampled_from(["delete", "retype", "blank-id", "tests", "metadata", "date"]))
        if draw(st.integers(0, 3)) == 0
        else None
    )
    if breakage in ("delete", "retype"):
        name = draw(st.sampled_from(STR_FIELDS))
        if breakage == "delete":
            del row[name]
        else:
            row[name] = draw(json_values.filter(lambda v: not isinstance(v, str)))
    elif breakage == "blank-id":
        row["question_id"] = draw(st.sampled_from(["", " ", "\t\n"]))
    elif breakage == "tests":
        kinds[draw(st.sampled_from(sorted(kinds)))] = draw(st.sampled_from(BAD_KINDS))
    elif breakage == "metadata":
        row["metadata"] = draw(st.sampled_from(META_BAD))
    elif breakage == "date":
        row["contest_date"] = draw(st.sampled_from(["0", "not-a-date", "2024/08/03", "20240803", "24-08-03"]))
    fields = {}
    for name, kind in kinds.items():
        raw, fields[name], present = draw(cases_field(kind))
        if present:
            row[name] = raw
    if breakage is not None or not (fields["public_test_cases"] or fields["private_test_cases"]):
        return row, None  # broken, or no test at all: nothing could grade it
    strs = {name: row[name] for name in STR_FIELDS}
    functional = any(
        t.testtype == "functional" for t in fields["public_test_cases"] + fields["private_test_cases"]
    )
    if (
        functional
        and "solve" not in str(row["metadata"])
        and not re.search(r"def\s+\w+\s*\(\s*self", strs["starter_code"])
    ):
        return row, None  # functional tests with no method to call
    return row, Problem(
        **strs, public_tests=fields["public_test_cases"], private_tests=fields["private_test_cases"]
    )


@FUZZ
@given(data=st.data(), n=st.integers(1, 3))
def test_rows_decode_exactly_or_fail_on_the_first_bad_line(
    data: st.DataObject, n: int, figures: Counter
) -> None:
    cases = [data.draw(lcb_row(["abc1_a", "abc1_b", "abc2_c", "abc3_d", "lc_1"])) for _ in range(n)]
    first_bad, seen = None, set()
    for lineno, (_row, expected) in enumerate(cases, 1):
        if expected is None or expected.question_id in seen:
            first_bad = lineno
            break
        seen.add(expected.question_id)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row, _ in cases))
        outcome, got = attempt(lambda: load_problems(str(path)), figures)
    if first_bad is None:
        assert outcome == "ok", got
        assert got == [p for _, p in cases]
        assert [g.metadata.get("func_name") for g in got] == [
            ("solve" if "solve" in str(row["metadata"]) else None) for row, _ in cases
        ]
    else:
        assert outcome == "error" and f"{path}:{first_bad}: " in got, got


GOOD_TESTS = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}] * 3


@FUZZ
@given(data=st.data(), layer=st.sampled_from(["base64", "zlib", "pickle"]), protocol=st.integers(0, 5))
def test_private_tests_corrupted_at_each_layer(
    data: st.DataObject, layer: str, protocol: int, figures: Counter
) -> None:
    """Flip bytes in the base64 text, the compressed stream or the pickle itself (then re-encode)."""
    pickled = pickle.dumps(json.dumps(GOOD_TESTS), protocol=protocol)
    if layer == "pickle":
        field = base64.b64encode(zlib.compress(data.draw(mutated(pickled)))).decode()
    elif layer == "zlib":
        field = base64.b64encode(data.draw(mutated(zlib.compress(pickled)))).decode()
    else:
        field = data.draw(mutated(lcb_encode(GOOD_TESTS, protocol).encode())).decode("latin-1")
    row = {name: "x" for name in STR_FIELDS} | {
        "contest_date": "", "public_test_cases": json.dumps(GOOD_TESTS), "private_test_cases": field,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_text(json.dumps(row) + "\n")
        outcome, got = attempt(lambda: load_problems(str(path)), figures)
    if outcome == "ok":
        (problem,) = got
        assert all(isinstance(t.input, str) and isinstance(t.output, str) for t in problem.private_tests)
    else:
        assert f"{path}:1: field 'private_test_cases'" in got


@FUZZ
@given(blob=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_as_a_problem_file(blob: bytes, figures: Counter) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.jsonl"
        path.write_bytes(blob)
        outcome, got = attempt(lambda: load_problems(str(path)), figures)
    if outcome == "ok":
        assert got == [] or all(isinstance(p, Problem) for p in got)


def test_hostile_shapes(tmp_path: Path, figures: Counter) -> None:
    base = {name: "x" for name in STR_FIELDS} | {
        "contest_date": "",
        "public_test_cases": "[]",
        "private_test_cases": "[]",
    }
    deep = "[" * 100_000 + "]" * 100_000
    for field, value in [
        ("public_test_cases", deep),  # JSON nested past the recursion limit
        ("private_test_cases", lcb_encode_raw(deep)),  # the same inside the pickle
        ("private_test_cases", lcb_encode_raw("[" + "7" * 6000 + "]")),  # an int too long to convert
        ("private_test_cases", base64.b64encode(zlib.compress(b"N)R.")).decode()),  # REDUCE on None
        ("private_test_cases", base64.b64encode(zlib.compress(b"}}b.")).decode()),  # BUILD on a dict
        ("private_test_cases", base64.b64encode(zlib.compress(b"\x80\x04\x8f(]\x90.")).decode()),  # unhashable set item
        ("private_test_cases", base64.b64encode(zlib.compress(b"}]Ns.")).decode()),  # unhashable dict key
        ("metadata", '{"a": ' + "1" * 6000 + "}"),
        ("metadata", "[" * 100_000),
    ]:  # fmt: skip
        path = tmp_path / "p.jsonl"
        path.write_text(json.dumps(base | {field: value}) + "\n")
        outcome, got = attempt(lambda: load_problems(str(path)), figures)  # noqa: B023
        assert outcome == "error" and f"{path}:1: field '{field}'" in got and len(got) < 400, got


def lcb_encode_raw(text: str) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(text, protocol=4))).decode()
