"""Rows that hold a whole conversation: TRL's `messages` ({role, content} turns) or ShareGPT's ({from, value}).

The answer is the last assistant turn; the prompt is every turn before it, so a multi-turn row trains on its final
answer only (TRL's prompt-completion loss). The problem statement (for splits, leaks and contamination) is the first
user turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codetune.errors import CodetuneError
from codetune.files import json_type

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Conversation:
    turns: list[dict[str, str]]  # the prompt: every turn before the answer, as {role, content}
    answer: str

    @property
    def statement(self) -> str:
        return next(t["content"] for t in self.turns if t["role"] == "user")

    @property
    def has_system(self) -> bool:
        return self.turns[0]["role"] == "system"


def _turn(turn: Any, where: str) -> dict[str, str]:
    if not isinstance(turn, dict):
        raise CodetuneError(f"{where}: expected a {{role, content}} object, got {type(turn).__name__}")
    if "role" in turn:
        role, content = turn["role"], turn.get("content")
    elif "from" in turn:  # ShareGPT
        role, content = SHAREGPT_ROLES.get(str(turn["from"]).lower(), turn["from"]), turn.get("value")
    else:
        raise CodetuneError(f"{where}: a turn needs 'role' and 'content' (or ShareGPT's 'from' and 'value')")
    if role not in ROLES:
        raise CodetuneError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise CodetuneError(f"{where}: the {role} turn's content must be a string, got {json_type(content)}")
    return {"role": role, "content": content}


def parse(value: Any, column: str, source: str, row_no: int) -> Conversation:
    """One row's conversation, checked: a list of turns ending with a non-empty assistant answer to a user turn."""
    where = f"{source}: row {row_no + 1}: column '{column}'"
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else type(value).__name__
        raise CodetuneError(f"{where} must be a non-empty list of turns, got {got}")
    turns = [_turn(t, f"{where}, turn {i + 1}") for i, t in enumerate(value)]
    if turns[-1]["role"] != "assistant":
        raise CodetuneError(
            f"{where} must end with an assistant turn (the answer), not a {turns[-1]['role']} turn"
        )
    if not turns[-1]["content"].strip():
        raise CodetuneError(f"{where}: the last assistant turn (the answer) is empty")
    prompt = turns[:-1]
    users = [t for t in prompt if t["role"] == "user"]
    if not users or not users[0]["content"].strip():
        raise CodetuneError(f"{where} needs a non-empty user turn before the answer")
    if any(t["role"] == "system" for t in prompt[1:]):
        raise CodetuneError(f"{where}: a system turn may only come first")
    return Conversation(prompt, turns[-1]["content"])
