"""Benchmark prompts: LiveCodeBench's exact strings and the study style, through the real Qwen chat template."""

from __future__ import annotations

import pytest

from codetune.bench.config import BenchConfig
from codetune.bench.problems import Problem
from codetune.bench.prompts import LCB_SYSTEM_MESSAGE, build_messages, render_prompt
from codetune.errors import CodetuneError


def problem(content: str, starter: str = "") -> Problem:
    return Problem("q1", "T", content, "atcoder", "abc1", "2024-08-01T00:00:00", starter, "easy", (), ())


def test_lcb_prompt_without_starter_code_is_livecodebench_verbatim() -> None:
    msgs = build_messages(problem("Print A+B."), "lcb", "ignored")
    assert msgs[0] == {
        "role": "system",
        "content": "You are an expert Python programmer. You will be given a question (problem specification) and "
        "will generate a correct Python program that matches the specification and passes all tests.",
    }
    assert msgs[1] == {
        "role": "user",
        "content": "### Question:\nPrint A+B.\n\n"
        "### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly "
        "test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
        "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        "```python\n# YOUR CODE HERE\n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n",
    }


def test_lcb_prompt_with_starter_code() -> None:
    starter = "class Solution:\n    def f(self, x: int) -> int:\n        "
    msgs = build_messages(problem("Return x.", starter), "lcb", "ignored")
    assert msgs[1]["content"] == (
        "### Question:\nReturn x.\n\n"
        "### Format: You will use the following starter code to write the solution to the problem and enclose "
        "your code within delimiters.\n"
        f"```python\n{starter}\n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n"
    )


def test_study_prompt_is_system_prompt_plus_raw_statement() -> None:
    cfg = BenchConfig(prompt_style="study")
    msgs = build_messages(problem("Print A+B.", "def f(): pass"), "study", cfg.system_prompt)
    assert msgs == [
        {"role": "system", "content": cfg.system_prompt},
        {"role": "user", "content": "Print A+B."},
    ]
    assert cfg.system_prompt.startswith("You are an expert Python programmer. Please read the problem")


def test_chat_template_of_the_real_qwen_tokenizer(qwen_tokenizer) -> None:
    msgs = build_messages(problem("Print A+B."), "lcb", "")
    text = render_prompt(msgs, qwen_tokenizer)
    assert text == (
        f"<|im_start|>system\n{LCB_SYSTEM_MESSAGE}<|im_end|>\n"
        f"<|im_start|>user\n{msgs[1]['content']}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_tokenizer_without_chat_template_is_a_user_error(qwen_tokenizer) -> None:
    import copy

    tok = copy.deepcopy(qwen_tokenizer)
    tok.chat_template = None
    with pytest.raises(CodetuneError, match="no chat template"):
        render_prompt(build_messages(problem("x"), "lcb", ""), tok)
