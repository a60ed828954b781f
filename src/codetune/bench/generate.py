"""Batched generation for the benchmark, the interface of its backends: transformers (`generate_hf.py`: left padding,
optional LoRA adapters) or vLLM when installed (`generate_vllm.py`).

Both backends take a list of `Job`s (one prompt, the sample indices still to produce and the LoRA adapter to answer
with, or none for the base model) and report each finished sample through `on_result(key, sample, text, cut)`
(`cut`: it reached `max_new_tokens` unfinished), so the caller can append it to disk at once. Jobs for several
adapters go in one call. Eager (CPU), their rows share batches, so the base model's weights are read once per step
for all of them (on a CPU, three models cost about 1.5x one); compiled (CUDA), each batch holds one adapter's rows and
one compiled graph serves every adapter (bench/adapters.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from codetune.bench.extract import program_end
from codetune.errors import CodetuneError

OnResult = Callable[[str, int, str, bool], None]


@dataclass(frozen=True)
class Decoding:
    """How to decode: greedy when temperature is 0, else nucleus sampling."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_new_tokens: int = 1024
    stop: tuple[str, ...] = ()
    seed: int = 0
    # end an answer once the program the study extraction rule grades is complete (`extract.program_end`)
    stop_at_program: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_config(cls, cfg: Any, stop: Sequence[str] = (), seed: int = 0) -> Decoding:
        at_program = cfg.stop_at_program and cfg.extract == "study"
        return cls(cfg.n, cfg.temperature, cfg.top_p, cfg.max_new_tokens, tuple(stop), seed, at_program)

    def stopped(self, text: str) -> bool:
        """Whether an answer's text so far ends it: a stop string, or (`stop_at_program`) a complete program."""
        if any(s and s in text for s in self.stop):
            return True
        return self.stop_at_program and program_end(text) is not None

    def finish(self, text: str) -> str:
        """The answer as saved: cut at the first stop string and (`stop_at_program`) after the program's fence."""
        text = truncate_at_stop(text, self.stop)
        end = program_end(text) if self.stop_at_program else None
        return text if end is None else text[:end]


@dataclass(frozen=True)
class Job:
    """One prompt, the sample indices still to generate for it, and the adapter folder to answer with."""

    key: str
    prompt: str
    samples: tuple[int, ...]
    adapter: Path | None = None


@dataclass
class GenStats:
    sequences: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


class Generator(Protocol):
    backend: str
    tokenizer: Any

    def run(
        self,
        jobs: Sequence[Job],
        decoding: Decoding,
        *,
        on_result: OnResult,
        progress: bool,
    ) -> GenStats: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut `text` at the first occurrence of any stop string (the stop string is dropped)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def pick_backend(requested: str) -> str:
    """`auto` = vLLM on CUDA when it is installed, else transformers."""
    has_vllm = importlib.util.find_spec("vllm") is not None
    if requested == "vllm" and not has_vllm:
        raise CodetuneError("backend: vllm is not installed; pip install 'codetune[vllm]' or set backend: hf")
    if requested == "auto":
        import torch

        return "vllm" if has_vllm and torch.cuda.is_available() else "hf"
    return requested


def make_generator(model_spec: str, cfg: Any, *, model: Any = None, tokenizer: Any = None) -> Generator:
    """A generator for `cfg.backend`; an already-loaded transformers model always uses the hf backend."""
    from codetune.bench.generate_hf import HFGenerator

    if model is not None:
        if tokenizer is None:
            from codetune.models import load_tokenizer

            tokenizer = load_tokenizer(model_spec)
        return HFGenerator(model, tokenizer, cfg.batch_size, decode_loop=cfg.decode_loop)
    if pick_backend(cfg.backend) == "vllm":
        from codetune.bench.generate_vllm import VLLMGenerator

        return VLLMGenerator(model_spec)
    from codetune.models import load_model

    model, tokenizer = load_model(model_spec)
    return HFGenerator(model, tokenizer, cfg.batch_size, decode_loop=cfg.decode_loop)
