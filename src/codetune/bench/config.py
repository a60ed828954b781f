"""Benchmark configuration: which problems, which prompt, how to generate, how to grade."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from codetune.configio import StrictModel
from codetune.data.config import STUDY_SYSTEM_PROMPT

DEFAULT_RELEASE = "release_v5"  # the study's LiveCodeBench release


class ProblemFilter(StrictModel):
    """Which LiveCodeBench problems to keep."""

    platform: list[str] | None = Field(None, description="e.g. [atcoder]")
    difficulty: list[str] | None = Field(None, description="easy, medium, hard")
    start: str | None = Field(None, description="First contest month, YYYY-MM (inclusive).")
    end: str | None = Field(None, description="Last contest month, YYYY-MM (inclusive).")
    ids: list[str] | None = Field(None, description="Explicit question ids.")
    limit: int | None = Field(None, ge=1, description="Keep the first N after filtering (quick runs).")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _month(cls, v: object) -> object:
        if v is None:
            return v
        s = str(v).strip()
        m = re.fullmatch(r"(\d{4})-(\d{2})", s) or re.fullmatch(r"(\d{2})(\d{2})", s)  # 2024-08 or LCB's 2408
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"expected a month as YYYY-MM (e.g. 2024-08), got {v!r}")
        year = m.group(1) if len(m.group(1)) == 4 else f"20{m.group(1)}"
        return f"{year}-{m.group(2)}"


class BenchConfig(StrictModel):
    """How a model is evaluated on LiveCodeBench-style problems."""

    problems: str = Field(
        "builtin:quickstart",
        description="LiveCodeBench JSONL path, 'builtin:quickstart', or 'livecodebench/code_generation_lite'.",
    )
    release: str = Field(DEFAULT_RELEASE, description="LiveCodeBench release tag when loading from the hub.")
    filter: ProblemFilter = Field(default_factory=ProblemFilter)
    prompt_style: Literal["lcb", "study"] = "lcb"
    system_prompt: str = Field(STUDY_SYSTEM_PROMPT, description="System turn of the `study` prompt style.")
    extract: Literal["lcb", "study"] = "lcb"
    n: int = Field(1, ge=1, description="Samples per problem (1 with temperature 0 = greedy Pass@1).")
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1)
    stop_at_program: bool = Field(
        True,
        description="With extract: study, end an answer once its first ```python block is closed: the program that "
        "rule grades is then complete, so the tokens a model spends explaining after it cannot change the result "
        "(35% of the base 1.5B's greedy tokens on the study's 41 problems). The saved answer ends at that fence. "
        "No effect with extract: lcb (LiveCodeBench grades the last block).",
    )
    batch_size: int = Field(8, ge=1)
    backend: Literal["auto", "hf", "vllm"] = "auto"
    decode_loop: bool = Field(
        True,
        description="hf backend, compiled (CUDA) decoding: codetune's decoding loop, which reads finished rows "
        "every 32 tokens, instead of transformers' generate, which waits for the GPU after every token (1.35x "
        "faster on an H200, benchmarks/RESULTS.md). Same greedy answers (sampling: same distribution).",
    )
    compare: Literal["lcb", "exact"] = Field(
        "lcb", description="Output comparison: LiveCodeBench's or exact tokens."
    )
    timeout: float = Field(
        6.0, gt=0, le=3600, description="Seconds per test (LiveCodeBench: 6; at most 3600)."
    )
    memory_mb: int = Field(1024, ge=64, description="Address-space limit per program.")
    workers: int | None = Field(None, ge=1, description="Parallel graders (default: CPU count).")
    k: list[int] = Field(default_factory=lambda: [1], description="pass@k values to report.")
