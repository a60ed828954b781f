"""Fuzzed dataset files through `load_rows` and `build_examples`: the rows as written, or a one-line CodetuneError."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import FUZZ, attempt, json_values, mutated

from codetune.data import load_rows
from codetune.data.build import build_examples
from codetune.data.config import DataConfig

COLS = ["input", "output", "solution", "split", "problem_id"]
REQUIRED = ("input", "output")  # what the default config (chat format, response=output) maps


class Tok:
    """The one tokenizer attribute `build_examples` reads."""

    eos_token = "<|endoftext|>"


@st.composite
def row_st(draw: st.DrawFn) -> dict:
    """Mostly well-formed rows: each mapped column is usually there (usually a string), plus extra columns."""
    row = draw(st.dictionaries(st.sampled_from(COLS[2:]) | st.text(max_size=6), json_values, max_size=3))
    for col in REQUIRED:
        if draw(st.integers(0, 29)):
            row[col] = draw(st.text(min_size=1, max_size=40) if draw(st.integers(0, 3)) else json_values)
    return row


rows_st = st.lists(row_st(), max_size=8)


def write_rows(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


def expect_error(rows: list[dict], columns: set[str] | None = None) -> bool:
    if not rows:
        return True
    return any(not all(c in (columns or r) for c in REQUIRED) for r in rows)


@FUZZ
@given(rows=rows_st, suffix=st.sampled_from([".jsonl", ".json"]))
def test_json_rows_with_missing_extra_and_mistyped_columns(
    rows: list[dict], suffix: str, figures: Counter
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = write_rows(Path(d) / f"data{suffix}", rows)
        outcome, got = attempt(lambda: load_rows(DataConfig(dataset=str(path))), figures)
        assert (outcome == "error") == expect_error(rows), got
        if outcome == "ok":
            assert got == rows
        else:
            assert str(path) in got


@st.composite
def parquet_tables(draw: st.DrawFn) -> tuple[pa.Table, list[dict]]:
    n = draw(st.integers(0, 5))
    names = draw(
        st.lists(st.sampled_from(COLS) | st.text("abcxyz_", min_size=1, max_size=5), unique=True, max_size=5)
    )
    kinds = {
        "string": (pa.string(), st.text(max_size=30)),
        "int": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
        "float": (pa.float64(), st.floats(allow_nan=False)),
        "bool": (pa.bool_(), st.booleans()),
        "list": (pa.list_(pa.string()), st.lists(st.text(max_size=5), max_size=3)),
    }
    fields, columns = [], {}
    for name in names:
        typ, values = kinds[draw(st.sampled_from(sorted(kinds)))]
        fields.append(pa.field(name, typ))
        columns[name] = [draw(st.none() | values) for _ in range(n)]
    table = pa.table(columns, schema=pa.schema(fields)) if names else pa.table({})
    return table, table.to_pylist()


@FUZZ
@given(case=parquet_tables())
def test_parquet_with_any_schema(case: tuple[pa.Table, list[dict]], figures: Counter) -> None:
    table, rows = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.parquet"
        pq.write_table(table, path)
        outcome, got = attempt(lambda: load_rows(DataConfig(dataset=str(path))), figures)
        assert (outcome == "error") == expect_error(rows, set(table.column_names)), got
        if outcome == "ok":
            assert got == rows


VALID_ROWS = [
    {
        "input": "Add two numbers.",
        "output": "Read a and b.\nprint(a + b)",
        "solution": "print(1)",
        "split": "train",
    },
    {"input": "Print hello.", "output": "print('hello')", "solution": "print(2)", "split": "valid"},
    {"input": "Sort a list.", "output": "print(sorted(x))", "solution": "print(3)", "split": "test"},
]


def valid_file_bytes(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"v{suffix}"
        if suffix == ".parquet":
            pq.write_table(pa.Table.from_pylist(VALID_ROWS), path)
        else:
            write_rows(path, VALID_ROWS)
        return path.read_bytes()


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".jsonl", ".json", ".parquet"]))
def test_corrupted_bytes_of_every_format(data: st.DataObject, suffix: str, figures: Counter) -> None:
    blob = data.draw(mutated(valid_file_bytes(suffix), max_edits=6 if suffix == ".parquet" else 4))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"data{suffix}"
        path.write_bytes(blob)
        cfg = DataConfig(dataset=str(path))
        outcome, got = attempt(lambda: load_rows(cfg), figures)
        if outcome == "ok":
            assert got and all(isinstance(r, dict) and all(c in r for c in REQUIRED) for r in got)
            # The whole data stage must then either build examples or say why not, on one line.
            outcome, built = attempt(lambda: build_examples(cfg, Tok()), figures)
            if outcome == "ok":
                assert sum(len(v) for v in built[0].values()) == len(got)


@FUZZ
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {"input": st.text(min_size=1) | json_values, "output": st.text(min_size=1) | json_values},
            optional={"split": st.sampled_from(["train", "valid", "test"]) | json_values,
                      "problem_id": json_values, "solution": json_values},
        ),
        min_size=1, max_size=8,
    ),
    fmt=st.sampled_from(["chat", "study"]),
    response=st.sampled_from(["output", "solution", "template"]),
    template=st.sampled_from(["{output}", "{input[0]}", "{output.real}", "{missing}", "{output:>{x}}", "{0}", "{"]),
)  # fmt: skip
def test_wrong_types_reach_build_as_one_line_errors(
    rows: list[dict], fmt: str, response: str, template: str, figures: Counter
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = write_rows(Path(d) / "data.jsonl", rows)
        cfg = DataConfig(dataset=str(path), format=fmt, response=response, template=template)
        outcome, built = attempt(lambda: build_examples(cfg, Tok()), figures)
        if outcome == "ok":
            examples, report = built
            assert report["total_rows"] == len(rows) == sum(len(v) for v in examples.values())
            for ex in (e for split in examples.values() for e in split):
                if fmt == "study":
                    assert isinstance(ex["text"], str) and ex["text"].endswith(Tok.eos_token)
                else:
                    assert (
                        isinstance(ex["completion"][0]["content"], str)
                        and ex["completion"][0]["content"].strip()
                    )


@pytest.mark.parametrize(
    "name,blob",
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n  \n\t\n"),
        ("empty.json", b""),
        ("empty-list.json", b"[]"),
        ("empty.parquet", b""),
        ("not-parquet.parquet", b"PAR1 this is not parquet PAR1"),
        ("latin1.jsonl", b'{"input": "caf\xe9", "output": "x"}\n'),
        ("bom.jsonl", b'\xef\xbb\xbf{"input": "a", "output": "b"}\n'),
        ("deep.json", b"[" * 200_000 + b"]" * 200_000),
        ("deep.jsonl", b'{"input": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"),
        ("bigint.jsonl", b'{"input": "a", "output": ' + b"9" * 10_000 + b"}\n"),
        ("scalar.jsonl", b"42\n"),
        ("object.json", b'{"input": "a", "output": "b"}'),
        ("nul.jsonl", b'{"input": "a\x00", "output": "b"}\n'),
        ("unknown.csv", b"input,output\na,b\n"),
    ],
)
def test_empty_and_malformed_files(tmp_path: Path, name: str, blob: bytes, figures: Counter) -> None:
    path = tmp_path / name
    path.write_bytes(blob)
    outcome, got = attempt(lambda: load_rows(DataConfig(dataset=str(path))), figures)
    assert outcome == "error" and str(path) in got


def test_enormous_lines(tmp_path: Path, figures: Counter) -> None:
    big = "x" * (24 << 20)  # one 24 MB field on one line
    path = tmp_path / "big.jsonl"
    path.write_text(
        json.dumps({"input": "Long one.", "output": big}) + "\n" + json.dumps(VALID_ROWS[1]) + "\n"
    )
    outcome, got = attempt(lambda: load_rows(DataConfig(dataset=str(path))), figures)
    assert outcome == "ok" and len(got) == 2 and len(got[0]["output"]) == len(big)
    path.write_text('{"input": "cut", "output": "' + big)  # the same line, cut before its end
    outcome, got = attempt(lambda: load_rows(DataConfig(dataset=str(path))), figures)
    assert outcome == "error" and f"{path}:1: invalid JSON" in got and len(got) < 300
