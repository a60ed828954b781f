"""The vLLM generation backend (GPU only; not exercised by the CPU test suite: vLLM is not installable here)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codetune.bench.generate import Decoding, GenStats, Job, OnResult
from codetune.errors import CodetuneError


class VLLMGenerator:
    """vLLM `LLM` with LoRA enabled; each prompt carries its own `LoRARequest` (none for the base model), so several
    adapters share the engine's batches."""

    backend = "vllm"
    chunk = 512  # prompts per vLLM call: finished samples reach disk at least this often

    def __init__(self, model_spec: str, max_lora_rank: int = 64, max_loras: int = 8) -> None:
        from vllm import LLM

        from codetune.models.load import hf_location

        where, extra = hf_location(model_spec)
        if "gguf_file" in extra:
            raise CodetuneError(
                f"{model_spec}: vLLM needs a dequantized folder; set CODETUNE_CACHE_DEQUANTIZED=1"
            )
        self.llm = LLM(
            model=where,
            revision=extra.get("revision"),
            enable_lora=True,
            max_lora_rank=max_lora_rank,
            max_loras=max_loras,
            seed=0,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._lora_ids: dict[str, int] = {}

    def run(
        self,
        jobs: Sequence[Job],
        decoding: Decoding,
        *,
        on_result: OnResult,
        progress: bool = True,
    ) -> GenStats:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        from codetune.bench.adapters import is_dora

        for folder in dict.fromkeys(Path(j.adapter) for j in jobs if j.adapter is not None):
            if (folder / "adapter_config.json").is_file() and is_dora(folder):
                raise CodetuneError(
                    f"{folder}: a DoRA adapter (use_dora), which vLLM cannot serve; set bench.backend: hf"
                )

        def lora(adapter: Path | None) -> Any:
            if adapter is None:
                return None
            lora_id = self._lora_ids.setdefault(str(adapter), len(self._lora_ids) + 1)
            return LoRARequest(f"adapter{lora_id}", lora_id, str(adapter))

        stats = GenStats()
        for c in range(0, len(jobs), self.chunk):
            chunk = jobs[c : c + self.chunk]
            params = [
                SamplingParams(
                    n=1 if decoding.greedy else len(j.samples),
                    temperature=decoding.temperature,
                    top_p=1.0 if decoding.greedy else decoding.top_p,
                    max_tokens=decoding.max_new_tokens,
                    stop=list(decoding.stop) or None,
                    seed=None if decoding.greedy else decoding.seed + c + i,
                )
                for i, j in enumerate(chunk)
            ]
            t0 = time.perf_counter()
            loras = [lora(j.adapter) for j in chunk]
            outs = self.llm.generate([j.prompt for j in chunk], params, lora_request=loras, use_tqdm=progress)
            stats.seconds += time.perf_counter() - t0
            for job, out in zip(chunk, outs, strict=True):
                for i, s in enumerate(job.samples):
                    answer = out.outputs[0 if decoding.greedy else i]
                    # vLLM's stop strings cannot say "a complete program": the answer is cut here (no time saved)
                    cut = answer.finish_reason == "length" and not decoding.stopped(answer.text)
                    on_result(job.key, s, decoding.finish(answer.text), cut)
                stats.new_tokens += sum(len(o.token_ids) for o in out.outputs)
                stats.sequences += len(out.outputs)
        return stats
