"""Benchmark prompts: LiveCodeBench's official chat prompt (`lcb`) or the study's system prompt + statement (`study`).

The `lcb` strings are those of LiveCodeBench's current `lcb_runner/prompts/code_generation.py` for chat models
(`PromptConstants.SYSTEM_MESSAGE_GENERIC`, `get_generic_question_template_answer`); releases before 2025 had
"You will NOT return anything except for the program." in the system message and no "Ensure that ..." sentence.
"""

from __future__ import annotations

from typing import Any, Literal

from codetune.errors import CodetuneError

PromptStyle = Literal["lcb", "study"]

LCB_SYSTEM_MESSAGE = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will generate "
    "a correct Python program that matches the specification and passes all tests."
)
LCB_FORMAT_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
LCB_FORMAT_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
    "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, "
    "it reads the inputs, runs the algorithm and writes output to STDOUT."
)


def lcb_user_prompt(question_content: str, starter_code: str = "") -> str:
    """LiveCodeBench's generic question template (the user turn)."""
    prompt = f"### Question:\n{question_content}\n\n"
    if starter_code:
        prompt += f"### Format: {LCB_FORMAT_WITH_STARTER}\n"
        prompt += f"```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {LCB_FORMAT_WITHOUT_STARTER}\n"
        prompt += "```python\n# YOUR CODE HERE\n```\n\n"
    prompt += "### Answer: (use the provided format with backticks)\n\n"
    return prompt


def build_messages(problem: Any, style: PromptStyle, system_prompt: str) -> list[dict[str, str]]:
    """Chat messages for one problem. `system_prompt` is used by the `study` style only."""
    if style == "lcb":
        return [
            {"role": "system", "content": LCB_SYSTEM_MESSAGE},
            {
                "role": "user",
                "content": lcb_user_prompt(problem.question_content, problem.starter_code or ""),
            },
        ]
    if style == "study":
        return [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": problem.question_content},
        ]
    raise CodetuneError(f"prompt_style: unknown style {style!r}; use lcb or study")


def render_prompt(messages: list[dict[str, str]], tokenizer: Any) -> str:
    """Apply the model's chat template, ending with the assistant turn opener."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "the tokenizer")
        raise CodetuneError(f"{name}: the tokenizer has no chat template; bench prompts need a chat model")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
