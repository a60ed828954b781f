"""Configuration of one arm's instruction data: source, column mapping, response choice, format, splits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from codetune.configio import StrictModel

STUDY_SYSTEM_PROMPT = (
    "You are an expert Python programmer. Please read the problem carefully before writing any Python code."
)


class Columns(StrictModel):
    """Which dataset column holds what. Defaults fit the CodeGen-Deep-5K / CodeGen-Diverse-5K schema."""

    prompt: str = Field("input", description="Problem statement (the user turn).")
    solution: str = Field("solution", description="Code-only answer.")
    output: str = Field("output", description="Reasoning + code answer.")
    split: str | None = Field("split", description="Split column (train/valid/test); None to make a split.")
    messages: str | None = Field(
        None,
        description="Column holding a whole conversation (TRL `messages`: {role, content} turns, or ShareGPT "
        "`conversations`: {from, value}). When set, it replaces prompt/output/solution: the answer is the last "
        "assistant turn, the prompt every turn before it, the statement the first user turn.",
    )
    problem_id: str | None = Field(
        None,
        description="Groups solutions of one problem; None uses a `problem_id` column when the data has one, "
        "else the normalized statement. Rows sharing a statement are always grouped together.",
    )


class SplitNames(StrictModel):
    """Values of the split column that mean train / validation / test."""

    train: str = "train"
    valid: str = "valid"
    test: str = "test"


class ContaminationConfig(StrictModel):
    """n-gram overlap check of training statements against a benchmark problem set."""

    problems: str | None = Field(
        None, description="LiveCodeBench JSONL (or 'builtin:quickstart') to check against."
    )
    ngram: int = Field(13, ge=3, description="Word n-gram size.")
    threshold: float = Field(
        0.5, gt=0, le=1, description="Share of a statement's n-grams that marks a match."
    )
    drop: bool = Field(False, description="Drop matching training rows instead of only reporting them.")


class DataConfig(StrictModel):
    """Where an arm's data comes from and how it becomes SFT examples."""

    dataset: str = Field(
        ..., description="Hub id, local .jsonl/.json/.parquet file, or 'builtin:deep'/'builtin:diverse'."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    columns: Columns = Field(default_factory=Columns)
    split_names: SplitNames = Field(default_factory=SplitNames)
    response: Literal["solution", "output", "template"] = Field(
        "output", description="Assistant answer: code only, reasoning + code, or `template` over both."
    )
    template: str | None = Field(
        None, description="Python format string over the row's columns, e.g. '{output}' (response=template)."
    )
    prompt_template: str | None = Field(
        None,
        description="Python format string over the row's columns for the problem statement (the user turn), "
        "instead of columns.prompt; e.g. '{instruction}\\n\\n{input}' for Alpaca-style rows (the result is "
        "stripped, so an empty `input` leaves no trailing blank lines).",
    )
    format: Literal["chat", "study"] = Field(
        "chat",
        description="chat: system + problem + answer through the chat template, loss on the answer only. "
        "study: the reference study's text (system + solution + EOS, no problem, loss on everything).",
    )
    system_prompt: str | None = Field(STUDY_SYSTEM_PROMPT, description="System turn; None for none.")
    valid_fraction: float = Field(0.1, ge=0, lt=1, description="Used only when there is no split column.")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="Used only when there is no split column.")
    seed: int = 42
    max_rows: int | None = Field(
        None, ge=1, description="Keep at most this many rows per split (quick runs)."
    )
    max_length: int = Field(2048, ge=16, description="Token budget used for truncation statistics.")
    contamination: ContaminationConfig = Field(default_factory=ContaminationConfig)
