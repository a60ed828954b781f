"""Code extraction: LiveCodeBench's last-two-fences rule and the study's first-block rule."""

from __future__ import annotations

import pytest

from codetune.bench.extract import extract_code
from codetune.errors import CodetuneError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("Here:\n```python\na = 1\nprint(a)\n```\nDone.", "a = 1\nprint(a)"),
        # the last two fence lines win: an earlier example block is skipped
        ("```python\nfirst()\n```\ntext\n```python\nsecond()\n```", "second()"),
        # three fences: between the last two, even if that is prose
        ("```python\nx()\n```\nprose\n```", "prose"),
        ("no code at all", ""),
        ("```python\nunterminated()", ""),
        ("", ""),
        # a fence anywhere in a line counts, as in LiveCodeBench (`"```" in line`)
        ("Code: ```python\nok()\n```", "ok()"),
        ("```\nbare()\n```", "bare()"),
        ("```python\n```", ""),
    ],
)
def test_lcb_rule(text: str, expected: str) -> None:
    assert extract_code(text, "lcb") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        # the first python block wins, even after a bare block
        ("```\nnot this\n```\n```python\nthis()\n```\n```python\nlater()\n```", "this()"),
        ("```Python\ncase()\n```", "case()"),
        ("```\nbare()\n```\nmore", "bare()"),
        # no fence: the whole text is the program
        ("print(input())", "print(input())"),
        # generation cut inside a block: the rest of the text
        ("Sure.\n```python\nimport sys\nprint(sys", "import sys\nprint(sys"),
        ("```py\nshort_tag()\n```", "short_tag()"),
    ],
)
def test_study_rule(text: str, expected: str) -> None:
    assert extract_code(text, "study") == expected


def test_rules_differ_on_multiple_blocks() -> None:
    text = "```python\na()\n```\n```python\nb()\n```"
    assert extract_code(text, "lcb") == "b()"
    assert extract_code(text, "study") == "a()"


def test_unknown_rule() -> None:
    with pytest.raises(CodetuneError, match="unknown rule"):
        extract_code("x", "regex")  # type: ignore[arg-type]


ANSWERS = [
    "Plan first.\n```python\nprint(1)\n```\nIt prints one.\n```python\nprint(2)\n```",
    "```\nnot python\n```\nthen\n```Python\nx = 1\n```\n````\nmore",
    "```python\nopen()",
    "no block at all",
    "```text\nplain\n```",
    "Inline ```python print(1)``` then\n```python\nreal()\n```",
]


@pytest.mark.parametrize("text", ANSWERS)
def test_program_end_is_where_later_text_no_longer_matters(text: str) -> None:
    """Cut anywhere after `program_end`, the study rule extracts what it extracts from the whole answer; before it,
    the program is not complete yet."""
    from codetune.bench.extract import program_end

    end = program_end(text)
    if end is None:
        assert all(program_end(text[:i]) is None for i in range(len(text)))
        return
    assert text[:end].endswith("```")
    assert all(
        extract_code(text[:i], "study") == extract_code(text, "study") for i in range(end, len(text) + 1)
    )
    assert all(program_end(text[:i]) is None for i in range(end))


def test_program_end_positions() -> None:
    from codetune.bench.extract import program_end

    assert program_end(ANSWERS[0]) == ANSWERS[0].index("```\nIt") + 3
    assert (
        program_end(ANSWERS[1]) == ANSWERS[1].index("```\n````") + 3
    )  # the earlier plain block does not count
    # the study rule's header runs to the line's end, so its block here is empty and closed by the next fence
    assert program_end(ANSWERS[5]) == len("Inline ```python print(1)``` then\n```")
    assert extract_code(ANSWERS[5], "study") == ""
    assert program_end("```python\n```") == len("```python\n```")
