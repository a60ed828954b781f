"""Reading JSON and JSONL: a lone surrogate escape is valid JSON but not text; it is refused where it is read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codetune.errors import CodetuneError
from codetune.files import iter_jsonl, lone_surrogate, read_json

LONE = '"a\\udcff"'  # JSON text: a string holding the lone surrogate U+DCFF


def test_lone_surrogates_are_found_by_their_field() -> None:
    assert lone_surrogate({"a": [1, {"b": "ok", "c": "x\udcff"}]}) == "a[1].c"
    assert lone_surrogate({"a": "\U0001f600", "b": ["fine"]}) is None  # a pair is one character: fine
    assert lone_surrogate("\ud800") == "(the value)"


def test_readers_name_the_file_line_and_field(tmp_path: Path) -> None:
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"input": "fine"}\n{"split": "train", "input": ' + LONE + "}\n")
    with pytest.raises(CodetuneError, match=r"rows.jsonl:2: field 'input' holds a lone surrogate"):
        list(iter_jsonl(jsonl))
    doc = tmp_path / "gen.json"
    doc.write_text('[{"question_id": "q", "code_list": [' + LONE + "]}]")
    with pytest.raises(CodetuneError, match=r"gen.json: field '\[0\].code_list\[0\]' holds a lone surrogate"):
        read_json(doc)
    (tmp_path / "pair.json").write_text('{"s": "\\ud83d\\ude00"}')  # an escaped pair decodes to one character
    assert read_json(tmp_path / "pair.json") == {"s": "\U0001f600"}


def test_grade_refuses_them_in_one_line_and_keeps_its_old_results(tmp_path: Path) -> None:
    problems = Path(__file__).parents[1] / "src" / "codetune" / "bench" / "builtin" / "quickstart.jsonl"
    qid = json.loads(problems.read_text().splitlines()[0])["question_id"]
    gen = tmp_path / "gen.json"
    gen.write_text('[{"question_id": "' + qid + '", "code_list": [' + LONE + "]}]")
    out = tmp_path / "results.json"
    out.write_text("old results\n")
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "grade", "--problems", str(problems), "--generations", str(gen),
         "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {gen}: field '[0].code_list[0]' holds a lone surrogate escape "
                                              "(\\uD800-\\uDFFF), which is not text"]  # fmt: skip
    assert out.read_text() == "old results\n"


def test_not_found_says_what_was_expected(tmp_path: Path) -> None:
    from codetune.files import not_found

    (tmp_path / "f").write_text("x")
    assert not_found(tmp_path / "f", "eval folder") == f"{tmp_path / 'f'}: is a file, not an eval folder"
    assert not_found(tmp_path, "problem file") == f"{tmp_path}: is a folder, not a problem file"
    assert not_found(tmp_path / "nope") == f"{tmp_path / 'nope'}: file not found"
