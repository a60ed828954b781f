"""Loading: hub (mocked at datasets.load_dataset), local JSONL/JSON/Parquet, builtin samples, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_helpers import small_rows, write_jsonl

from codetune.data import build_splits, load_rows
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError


class Tok:
    eos_token = "<|im_end|>"


def one_line_error(cfg: DataConfig) -> str:
    with pytest.raises(CodetuneError) as e:
        build_splits(cfg, Tok())
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_hub_id_reads_all_splits_at_the_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    rows = small_rows()
    for r in rows:
        del r["split"]

    def fake_load_dataset(path, revision=None, **kw):
        calls.append((path, revision))
        return datasets.DatasetDict(
            {
                "train": datasets.Dataset.from_list(rows[:5]),
                "valid": datasets.Dataset.from_list(rows[5:6]),
                "test": datasets.Dataset.from_list(rows[6:]),
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    cfg = DataConfig(dataset="Naholav/CodeGen-Deep-5K", revision="abc123")
    built = build_splits(cfg, Tok())
    assert calls == [("Naholav/CodeGen-Deep-5K", "abc123")]
    assert {s: len(d) for s, d in built.datasets.items()} == {"train": 5, "valid": 1, "test": 1}
    assert built.report["split_source"] == "column"
    other = build_splits(cfg.model_copy(update={"revision": "def456"}), Tok())
    assert len(built.fingerprint) == 64 and other.fingerprint != built.fingerprint
    assert len(load_rows(cfg)) == 7


def test_hub_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path, revision=None, **kw):
        raise ConnectionError("offline\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    msg = one_line_error(DataConfig(dataset="someone/missing"))
    assert msg.startswith("someone/missing: could not load the hub dataset")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_local_formats_give_the_same_splits(tmp_path: Path, suffix: str) -> None:
    rows = small_rows()
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, rows)
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    built = build_splits(DataConfig(dataset=str(path)), Tok())
    assert [len(built.datasets[s]) for s in ("train", "valid", "test")] == [5, 1, 1]
    assert built.datasets["valid"][0]["problem_id"] == "p4"
    import hashlib

    assert built.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_builtin_samples_load() -> None:
    for name in ("deep", "diverse"):
        rows = load_rows(DataConfig(dataset=f"builtin:{name}"))
        assert {"id", "problem_id", "split", "input", "output", "solution", "tests"} <= set(rows[0])
    with pytest.raises(CodetuneError, match="builtin:nope: unknown sample set"):
        load_rows(DataConfig(dataset="builtin:nope"))


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [{"a": "x", "b": "y"}])
    msg = one_line_error(DataConfig(dataset=str(path)))
    assert msg == f"{path}: column 'input' not found (columns: a, b)"
    cfg = DataConfig(dataset=str(path), columns={"prompt": "a"}, response="solution")
    assert one_line_error(cfg).endswith("column 'solution' not found (columns: a, b)")


def test_column_mapping_renames(tmp_path: Path) -> None:
    rows = [
        {"q": r["input"], "code": r["solution"], "grp": r["problem_id"], "part": r["split"]}
        for r in small_rows()
    ]
    path = write_jsonl(tmp_path / "mapped.jsonl", rows)
    cfg = DataConfig(
        dataset=str(path),
        columns={"prompt": "q", "solution": "code", "problem_id": "grp", "split": "part"},
        response="solution",
    )
    built = build_splits(cfg, Tok())
    ex = built.datasets["test"][0]
    assert ex["problem_id"] == "p5"
    assert ex["completion"][0]["content"] == "print(1)"
    assert ex["prompt"][-1]["content"] == rows[-1]["q"]


def test_template_missing_column_is_one_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", small_rows())
    cfg = DataConfig(dataset=str(path), response="template", template="{nope}\n{solution}")
    assert "column 'nope' not found (data.template" in one_line_error(cfg)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"input": "a"}\n{"input": \n', ":2: invalid JSON"),
        (b"", "no rows"),
        (b'{"input": "caf\xe9"}\n', ":1: not valid UTF-8"),
        (b"[1, 2]\n", ":1: expected a JSON object"),
    ],
)
def test_bad_jsonl_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    msg = one_line_error(DataConfig(dataset=str(path)))
    assert str(path) in msg and expected in msg


def test_bad_json_and_parquet_files(tmp_path: Path) -> None:
    js = tmp_path / "bad.json"
    js.write_text('{"rows": 1}', encoding="utf-8")
    assert (
        one_line_error(DataConfig(dataset=str(js))) == f"{js}: expected a JSON list of objects (one per row)"
    )
    pq_path = tmp_path / "bad.parquet"
    pq_path.write_bytes(b"not parquet at all")
    assert one_line_error(DataConfig(dataset=str(pq_path))).startswith(
        f"{pq_path}: not a readable Parquet file"
    )
    missing = tmp_path / "none.jsonl"
    assert one_line_error(DataConfig(dataset=str(missing))).startswith(f"{missing}: file not found")


def test_wrong_value_type_names_row_and_column(tmp_path: Path) -> None:
    rows = small_rows()
    rows[2]["output"] = 42
    path = write_jsonl(tmp_path / "types.jsonl", rows)
    assert (
        one_line_error(DataConfig(dataset=str(path)))
        == f"{path}: row 3: column 'output' must be a string, got int"
    )


def test_empty_or_unknown_split_values(tmp_path: Path) -> None:
    rows = [r for r in small_rows() if r["split"] != "test"]
    path = write_jsonl(tmp_path / "notest.jsonl", rows)
    msg = one_line_error(DataConfig(dataset=str(path)))
    assert msg.startswith(f"{path}: split 'test' is empty") and "data.split_names.test" in msg
    rows = small_rows()
    rows[5]["split"] = "validation"
    path = write_jsonl(tmp_path / "names.jsonl", rows)
    msg = one_line_error(DataConfig(dataset=str(path)))
    assert "row 6: column 'split' has value 'validation'" in msg
    cfg = DataConfig(dataset=str(path), split_names={"valid": "validation"})
    assert len(build_splits(cfg, Tok()).datasets["valid"]) == 1


def test_a_named_split_column_must_exist(tmp_path: Path) -> None:
    """Without a split column the default makes a seeded split; a split column the user names must be there."""
    path = write_jsonl(tmp_path / "data.jsonl", [{"input": "x", "output": "y", "solution": "z"}])
    assert load_rows(DataConfig(dataset=str(path)))  # no `split` column: a seeded split later
    for named in ("fold", "split"):
        msg = one_line_error(DataConfig(dataset=str(path), columns={"split": named}))
        assert msg == (
            f"{path}: column '{named}' (data.columns.split) not found (columns: input, output, solution); "
            "set data.columns.split=null for a seeded split"
        )
