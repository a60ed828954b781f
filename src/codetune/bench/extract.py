"""Code extraction from a model's answer: LiveCodeBench's rule (`lcb`) or the study's rule (`study`)."""

from __future__ import annotations

import re
from typing import Literal

from codetune.errors import CodetuneError

ExtractRule = Literal["lcb", "study"]

FENCE = "```"
# A block runs to its closing fence, or to the end of the text when generation stopped inside it.
_PYTHON_BLOCK = re.compile(r"```[ \t]*python[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_ANY_BLOCK = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_lcb(text: str) -> str:
    """LiveCodeBench's `extract_code`: the lines between the last two lines containing a fence, else ""."""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if FENCE in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1 : fences[-1]])


def extract_study(text: str) -> str:
    """The first ```python block, else the first ``` block, else the whole text."""
    for pattern in (_PYTHON_BLOCK, _ANY_BLOCK):
        m = pattern.search(text)
        if m:
            return m.group(1).rstrip("\n")
    return text


def program_end(text: str) -> int | None:
    """Where the program the study rule grades is complete: just past the closing fence of the first ```python block,
    else None. Nothing written after it can change what `extract_study` returns."""
    m = _PYTHON_BLOCK.search(text)
    return m.end() if m and text.startswith(FENCE, m.end() - len(FENCE)) else None


def cut_inside_program(text: str, rule: ExtractRule) -> bool:
    """For an answer the token limit cut: does the cut reach the program `rule` grades? With `study`, when the
    extracted code is empty or runs to the end of the text; with `lcb` (the last two fences), when a block is left
    open or fewer than two fences were written, so the graded lines are not the block the model was writing."""
    if rule == "lcb":
        fences = sum(FENCE in line for line in text.split("\n"))
        return fences < 2 or fences % 2 == 1
    code = extract_study(text).rstrip()
    return not code.strip() or text.rstrip().endswith(code)


def extract_code(text: str, rule: ExtractRule) -> str:
    if rule == "lcb":
        return extract_lcb(text)
    if rule == "study":
        return extract_study(text)
    raise CodetuneError(f"extract: unknown rule {rule!r}; use lcb or study")
