"""Formatting (chat/study, response choice), grouped seeded splits, leak detection and contamination."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import row, small_rows, write_jsonl

from codetune.data import build_splits
from codetune.data.config import STUDY_SYSTEM_PROMPT, DataConfig
from codetune.data.splits import normalize


class Tok:
    eos_token = "<|im_end|>"


def many_problems(n: int = 30, per: int = 3) -> list[dict]:
    return [row(f"q{i}", None, k) for i in range(n) for k in range(1, per + 1)]


def test_chat_rows_are_trl_prompt_completion(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", small_rows())
    ex = build_splits(DataConfig(dataset=str(path)), Tok()).datasets["train"][0]
    assert set(ex) == {"prompt", "completion", "problem_id"}
    assert ex["prompt"] == [
        {"role": "system", "content": STUDY_SYSTEM_PROMPT},
        {"role": "user", "content": small_rows()[0]["input"]},
    ]
    assert ex["completion"] == [{"role": "assistant", "content": small_rows()[0]["output"]}]
    no_system = build_splits(DataConfig(dataset=str(path), system_prompt=None), Tok()).datasets["train"][0]
    assert [m["role"] for m in no_system["prompt"]] == ["user"]


def test_response_choices(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", small_rows())
    r0 = small_rows()[0]

    def answer(**kw) -> str:
        return build_splits(DataConfig(dataset=str(path), **kw), Tok()).datasets["train"][0]["completion"][0][
            "content"
        ]

    assert answer(response="solution") == r0["solution"]
    assert answer(response="output") == r0["output"]
    assert (
        answer(response="template", template="```python\n{solution}\n```")
        == f"```python\n{r0['solution']}\n```"
    )


def test_study_text_is_system_solution_eos(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", small_rows())
    ex = build_splits(DataConfig(dataset=str(path), format="study"), Tok()).datasets["train"][0]
    assert ex == {"text": STUDY_SYSTEM_PROMPT + "\nprint(1)<|im_end|>", "problem_id": "p1"}
    assert small_rows()[0]["input"] not in ex["text"]


def test_seeded_split_groups_problems_and_is_reproducible(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "nosplit.jsonl", many_problems())
    cfg = DataConfig(dataset=str(path), valid_fraction=0.1, test_fraction=0.2, seed=7)
    built = build_splits(cfg, Tok())
    ids = {s: [r["problem_id"] for r in d] for s, d in built.datasets.items()}
    sets = {s: set(v) for s, v in ids.items()}
    assert [len(sets[s]) for s in ("train", "valid", "test")] == [21, 3, 6]
    assert (
        not (sets["train"] & sets["valid"])
        and not (sets["train"] & sets["test"])
        and not (sets["valid"] & sets["test"])
    )
    assert all(len(v) == 3 * len(sets[s]) for s, v in ids.items())  # every solution follows its problem
    assert built.report["split_source"] == "seeded" and built.report["leaks"] == []
    again = build_splits(cfg, Tok())
    assert {s: [r["problem_id"] for r in d] for s, d in again.datasets.items()} == ids
    other = build_splits(cfg.model_copy(update={"seed": 8}), Tok())
    assert {r["problem_id"] for r in other.datasets["test"]} != sets["test"]


def test_seeded_split_groups_by_statement_without_problem_ids(tmp_path: Path) -> None:
    rows = many_problems(20, 2)
    for r in rows:
        del r["problem_id"]
        if r["id"].endswith("-2"):  # same problem written with other spacing and case
            r["input"] = "  " + r["input"].upper().replace(" ", "   ")
    path = write_jsonl(tmp_path / "nopid.jsonl", rows)
    built = build_splits(DataConfig(dataset=str(path)), Tok())
    for ds in built.datasets.values():
        counts: dict[str, int] = {}
        for r in ds:
            counts[r["problem_id"]] = counts.get(r["problem_id"], 0) + 1
        assert set(counts.values()) == {2}
        assert all(pid.startswith("s-") for pid in counts)


def test_given_split_leak_is_reported(tmp_path: Path) -> None:
    rows = small_rows()
    planted = dict(rows[0], id="dup", problem_id="p9", split="test")
    planted["input"] = rows[0]["input"].replace(" ", "\n").upper()
    path = write_jsonl(tmp_path / "leak.jsonl", [*rows, planted])
    report = build_splits(DataConfig(dataset=str(path)), Tok()).report
    assert report["leaks"] == [
        {
            "problem_id": "p1",
            "splits": ["train", "test"],
            "rows": {"train": [0, 1], "test": [7]},
            "statement": rows[0]["input"][:80],
        }
    ]
    clean = build_splits(DataConfig(dataset=str(write_jsonl(tmp_path / "ok.jsonl", rows))), Tok())
    assert clean.report["leaks"] == []


def test_max_rows_caps_each_split(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", small_rows())
    built = build_splits(DataConfig(dataset=str(path), max_rows=2), Tok())
    assert [len(built.datasets[s]) for s in ("train", "valid", "test")] == [2, 1, 1]


def test_normalize_ignores_case_spacing_and_punctuation() -> None:
    assert normalize("Print  the SUM,\r\n of A and B!") == normalize("print the sum of a and b")


def test_contamination_detects_and_drops_a_planted_statement(tmp_path: Path) -> None:
    bench_text = (
        "Takahashi has a row of N lamps. Each second he toggles every lamp whose index is a multiple of the second. "
        "After N seconds, how many lamps are on? Print the number of lamps that are switched on at the end."
    )
    bench = tmp_path / "lcb.jsonl"
    bench.write_text(
        json.dumps({"question_id": "abc999_a", "question_content": bench_text})
        + "\n"
        + json.dumps(
            {"question_id": "abc999_b", "question_content": "Something else entirely, nothing shared."}
        )
        + "\n",
        encoding="utf-8",
    )
    rows = small_rows()
    rows.insert(2, row("leaky", "train", 1, statement="Problem\n\n" + bench_text.upper()))
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = DataConfig(dataset=str(path), contamination={"problems": str(bench)})
    report = build_splits(cfg, Tok()).report["contamination"]
    assert report["dropped"] == 0
    assert len(report["matches"]) == 1
    m = report["matches"][0]
    assert (m["row"], m["problem_id"], m["question_id"], m["split"]) == (2, "leaky", "abc999_a", "train")
    assert m["overlap"] == pytest.approx(1.0)
    dropped = build_splits(
        DataConfig(dataset=str(path), contamination={"problems": str(bench), "drop": True}), Tok()
    )
    assert dropped.report["contamination"]["dropped"] == 1
    assert "leaky" not in {r["problem_id"] for r in dropped.datasets["train"]}
    assert len(dropped.datasets["train"]) == 5
