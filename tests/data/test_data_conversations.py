"""Conversation datasets (TRL `messages`, ShareGPT `conversations`): prompt, answer, splits and loss mask."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import write_jsonl

from codetune.data import build_splits, inspect
from codetune.data.config import DataConfig
from codetune.errors import CodetuneError


def messages_row(k: int, split: str, *, system: bool = False, turns: int = 1) -> dict:
    msgs = [{"role": "system", "content": "Answer in Python."}] if system else []
    for t in range(turns):
        msgs.append(
            {"role": "user", "content": f"Task {k}: print the cube of {k}." if t == 0 else "Shorter?"}
        )
        msgs.append({"role": "assistant", "content": f"print({k} ** 3)  # answer {t}"})
    return {"messages": msgs, "split": split}


def sharegpt_row(k: int) -> dict:
    return {
        "conversations": [
            {"from": "human", "value": f"Task {k}: print {k} squared."},
            {"from": "gpt", "value": f"print({k} * {k})"},
        ]
    }


def test_messages_become_prompt_completion_rows(qwen_tokenizer, tmp_path: Path) -> None:
    rows = [
        messages_row(1, "train"),
        messages_row(2, "train", system=True, turns=2),
        messages_row(3, "valid"),
    ]
    rows += [messages_row(4, "test"), messages_row(1, "train")]  # a second solution of task 1
    cfg = DataConfig(dataset=str(write_jsonl(tmp_path / "m.jsonl", rows)), columns={"messages": "messages"})
    built = build_splits(cfg, qwen_tokenizer)
    train = built.datasets["train"]
    first, multi = train[0], train[1]
    assert first["prompt"] == [
        {"role": "system", "content": cfg.system_prompt},  # added: the row has no system turn of its own
        {"role": "user", "content": "Task 1: print the cube of 1."},
    ]
    assert first["completion"] == [{"role": "assistant", "content": "print(1 ** 3)  # answer 0"}]
    # the row's own system turn wins; earlier turns stay in the prompt; only the last answer is the completion
    assert [t["role"] for t in multi["prompt"]] == ["system", "user", "assistant", "user"]
    assert multi["prompt"][0]["content"] == "Answer in Python."
    assert multi["completion"][0]["content"] == "print(2 ** 3)  # answer 1"
    # solutions of one task (same first user turn) share a problem id
    assert train[0]["problem_id"] == train[2]["problem_id"] != train[1]["problem_id"]
    assert built.report["splits"]["train"] == {
        "rows": 3,
        "problems": 2,
        "solutions_per_problem": {"mean": 1.5, "max": 2},
    }


def test_sharegpt_rows_and_a_seeded_split_by_first_user_turn(qwen_tokenizer, tmp_path: Path) -> None:
    rows = [sharegpt_row(k % 6) for k in range(12)]  # 6 tasks, 2 rows each, no split column
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    cfg = DataConfig(
        dataset=str(path), columns={"messages": "conversations", "split": None}, system_prompt=None
    )
    built = build_splits(cfg, qwen_tokenizer)
    seen: dict[str, str] = {}
    for split, ds in built.datasets.items():
        for ex in ds:
            assert ex["prompt"][0]["role"] == "user" and ex["completion"][0]["content"].startswith("print(")
            assert (
                seen.setdefault(ex["prompt"][0]["content"], split) == split
            )  # a task never straddles splits
    assert len(seen) == 6 and sum(len(ds) for ds in built.datasets.values()) == 12
    stats = inspect(cfg, qwen_tokenizer)
    assert stats["splits"]["train"]["tokens"]["max"] > 0


def test_only_the_last_answer_carries_loss(tiny_model_dir: Path, qwen_tokenizer, tmp_path: Path) -> None:
    from test_data_trl_masks import sft_dataset

    rows = [messages_row(k, s, turns=2) for k, s in ((1, "train"), (2, "valid"), (3, "test"))]
    cfg = DataConfig(dataset=str(write_jsonl(tmp_path / "m.jsonl", rows)), columns={"messages": "messages"})
    train = build_splits(cfg, qwen_tokenizer).datasets["train"]
    ds, _ = sft_dataset(tiny_model_dir, qwen_tokenizer, train, tmp_path)
    ex = ds[0]
    trained = [t for t, label in zip(ex["input_ids"], ex["labels"], strict=True) if label != -100]
    assert qwen_tokenizer.decode(trained) == "print(1 ** 3)  # answer 1<|im_end|>\n"
    assert "# answer 0" in qwen_tokenizer.decode(ex["input_ids"])  # the first answer is context, not target


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ("print(1)", "must be a non-empty list of turns, got str"),
        ([], "must be a non-empty list of turns, got an empty list"),
        (
            [{"role": "user", "content": "Task"}],
            "must end with an assistant turn (the answer), not a user turn",
        ),
        ([{"role": "assistant", "content": "x"}], "needs a non-empty user turn before the answer"),
        ([{"role": "user", "content": "T"}, {"role": "assistant", "content": " "}], "answer) is empty"),
        (
            [{"role": "user", "content": "T"}, {"role": "tool", "content": "x"}],
            "turn 2: role 'tool' is not one of",
        ),
        (
            [{"role": "user", "content": "T"}, {"role": "assistant", "content": 3}],
            "content must be a string, got int",
        ),
        (
            [{"speaker": "me"}, {"role": "assistant", "content": "x"}],
            "turn 1: a turn needs 'role' and 'content'",
        ),
        (
            [
                {"role": "user", "content": "T"},
                {"role": "system", "content": "S"},
                {"role": "assistant", "content": "x"},
            ],
            "a system turn may only come first",
        ),
    ],
)
def test_bad_conversations_are_one_line_errors(
    qwen_tokenizer, tmp_path: Path, conversation, message: str
) -> None:
    rows = [messages_row(1, "train"), {"messages": conversation, "split": "train"}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(CodetuneError) as e:
        build_splits(DataConfig(dataset=str(path), columns={"messages": "messages"}), qwen_tokenizer)
    assert str(e.value).startswith(f"{path}: row 2: column 'messages'") and message in str(e.value)


def test_conversation_column_hint_and_response_conflict(qwen_tokenizer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [messages_row(1, "train")])
    with pytest.raises(CodetuneError, match="column 'input' not found .*set data.columns.messages=messages"):
        build_splits(DataConfig(dataset=str(path)), qwen_tokenizer)
    with pytest.raises(CodetuneError, match="data.response: 'solution' does not apply to conversations"):
        build_splits(
            DataConfig(dataset=str(path), columns={"messages": "messages"}, response="solution"),
            qwen_tokenizer,
        )


def test_cli_overrides_read_conversations_for_inspect_and_check(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from codetune.cli import app

    statement = " ".join(f"word{i}" for i in range(40))
    bench = write_jsonl(tmp_path / "lcb.jsonl", [{"question_id": "abc001_a", "question_content": statement}])
    rows = [messages_row(k, s) for k, s in ((1, "train"), (2, "train"), (3, "valid"), (4, "test"))]
    rows[1]["messages"][0]["content"] = "Intro. " + statement
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    args = ["data", "check", str(path), "--problems", str(bench), "--json", "-o", "columns.messages=messages"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [(m["row"], m["question_id"]) for m in json.loads(result.output)["matches"]] == [(1, "abc001_a")]
    result = CliRunner().invoke(
        app, ["data", "inspect", str(path), "--json", "-o", "columns.messages=messages"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["splits"]["train"]["rows"] == 2
