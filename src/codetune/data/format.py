"""Turn one raw row into an SFT example: the chosen response, then the `chat` or `study` format."""

from __future__ import annotations

from typing import Any

from codetune.data.config import DataConfig
from codetune.data.conversation import Conversation
from codetune.errors import CodetuneError
from codetune.files import json_type


def text_field(row: dict[str, Any], column: str, source: str, row_no: int) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        got = json_type(value)
        raise CodetuneError(f"{source}: row {row_no + 1}: column '{column}' must be a string, got {got}")
    if not value.strip():
        raise CodetuneError(f"{source}: row {row_no + 1}: column '{column}' is empty")
    return value


def response_text(row: dict[str, Any], cfg: DataConfig, source: str, row_no: int) -> str:
    """The assistant answer: `solution` (code only), `output` (reasoning + code) or `template` over columns."""
    if cfg.response == "solution":
        return text_field(row, cfg.columns.solution, source, row_no)
    if cfg.response == "output":
        return text_field(row, cfg.columns.output, source, row_no)
    if not cfg.template:
        raise CodetuneError("data.template: required when data.response is 'template' (e.g. '{output}')")
    text = render(cfg.template, "data.template", row, source)
    if not text.strip():
        raise CodetuneError(f"{source}: row {row_no + 1}: data.template gives an empty answer")
    return text


def statement_text(row: dict[str, Any], cfg: DataConfig, source: str, row_no: int) -> str:
    """The problem statement: `prompt_template` over the row's columns (stripped), else the prompt column."""
    if cfg.prompt_template is None:
        return text_field(row, cfg.columns.prompt, source, row_no)
    text = render(cfg.prompt_template, "data.prompt_template", row, source).strip()
    if not text:
        raise CodetuneError(f"{source}: row {row_no + 1}: data.prompt_template gives an empty statement")
    return text


def render(template: str, key: str, row: dict[str, Any], source: str) -> str:
    """`template.format(**row)`, with one-line errors naming the config key and the missing column."""
    try:
        return template.format(**row)
    except KeyError as e:
        cols = ", ".join(row)
        raise CodetuneError(f"{source}: column '{e.args[0]}' not found ({key}; columns: {cols})") from None
    except (IndexError, ValueError, TypeError, AttributeError) as e:
        raise CodetuneError(f"{key}: invalid format string {template!r} ({e})") from None


def chat_example(conv: Conversation, system_prompt: str | None, problem_id: str) -> dict[str, Any]:
    """TRL conversational prompt-completion row (the loss falls on the completion only); the conversation's own
    system turn wins over `system_prompt`."""
    prompt = list(conv.turns)
    if system_prompt and not conv.has_system:
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": conv.answer}],
        "problem_id": problem_id,
    }


def study_example(
    solution: str, system_prompt: str | None, eos_token: str, problem_id: str
) -> dict[str, Any]:
    """The reference study's language-modeling text: system prompt, the code, EOS. No problem statement."""
    head = f"{system_prompt}\n" if system_prompt else ""
    return {"text": head + solution + eos_token, "problem_id": problem_id}


def format_row(
    row: dict[str, Any],
    cfg: DataConfig,
    statement: str,
    problem_id: str,
    eos_token: str,
    source: str,
    row_no: int,
    conversation: Conversation | None = None,
) -> dict[str, Any]:
    if conversation is not None and cfg.format == "study":
        return study_example(conversation.answer, cfg.system_prompt, eos_token, problem_id)
    if cfg.format == "study":
        solution = text_field(row, cfg.columns.solution, source, row_no)
        return study_example(solution, cfg.system_prompt, eos_token, problem_id)
    if conversation is None:
        turn = {"role": "user", "content": statement}
        conversation = Conversation([turn], response_text(row, cfg, source, row_no))
    return chat_example(conversation, cfg.system_prompt, problem_id)


def token_lengths(examples: list[dict[str, Any]], tokenizer: Any) -> list[int]:
    """Token count of each formatted example as the trainer will see it (chat template for `chat` rows)."""
    if not examples:
        return []
    if "text" in examples[0]:
        enc = tokenizer([e["text"] for e in examples], add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in enc]
    lengths = []
    for e in examples:
        ids = tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        lengths.append(len(ids))
    return lengths
