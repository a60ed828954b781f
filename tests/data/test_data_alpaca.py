"""Alpaca-style rows (instruction, input, output): the statement from `prompt_template`, the answer from a column."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_jsonl

from codetune.data import build_splits
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError

TEMPLATE = "{instruction}\n\n{input}"


def alpaca_rows() -> list[dict]:
    rows = []
    for k in range(9):
        extra = f"n = {k}" if k % 2 else ""  # Alpaca leaves `input` empty when the instruction says it all
        rows.append(
            {"instruction": f"Print n squared for task {k}.", "input": extra, "output": f"print({k}**2)"}
        )
    return rows


def alpaca_config(path: Path, **kw) -> DataConfig:
    columns = {"output": "output", "split": None}
    return DataConfig(dataset=str(path), prompt_template=TEMPLATE, columns=columns, **kw)


def test_prompt_template_builds_the_user_turn(qwen_tokenizer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", alpaca_rows())
    built = build_splits(alpaca_config(path), qwen_tokenizer)
    users = {
        ex["prompt"][-1]["content"]: ex["completion"][0]["content"]
        for ds in built.datasets.values()
        for ex in ds
    }
    assert users["Print n squared for task 1.\n\nn = 1"] == "print(1**2)"
    assert users["Print n squared for task 2."] == "print(2**2)"  # empty input: no trailing blank lines
    assert len(users) == 9


@pytest.mark.parametrize(
    ("template", "edit", "message"),
    [
        (
            "{instruction}\n\n{context}",
            None,
            "column 'context' not found (data.prompt_template; columns: instruction",
        ),
        ("{instruction", None, "data.prompt_template: invalid format string"),
        (TEMPLATE, "blank", "row 3: data.prompt_template gives an empty statement"),
    ],
)
def test_prompt_template_errors(qwen_tokenizer, tmp_path: Path, template: str, edit, message: str) -> None:
    rows = alpaca_rows()
    if edit == "blank":
        rows[2] = {**rows[2], "instruction": " ", "input": ""}
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    cfg = DataConfig(dataset=str(path), prompt_template=template, columns={"split": None})
    with pytest.raises(CodetuneError) as e:
        build_splits(cfg, qwen_tokenizer)
    assert message in str(e.value)


def test_prompt_template_and_conversations_do_not_mix(qwen_tokenizer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    cfg = DataConfig(dataset=str(path), prompt_template=TEMPLATE, columns={"messages": "messages"})
    with pytest.raises(CodetuneError, match="data.prompt_template: does not apply to conversations"):
        build_splits(cfg, qwen_tokenizer)
