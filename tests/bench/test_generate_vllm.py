"""The vLLM backend's glue, against a recording stand-in for the `vllm` package (vLLM cannot be installed here):
one LoRARequest per prompt (the same id for the same adapter, none for the base model), samples fanned out, chunks."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codetune.bench.generate import Decoding, Job


@dataclass
class LoRARequest:
    name: str
    lora_int_id: int
    path: str


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list | None = None
    seed: int | None = None


@dataclass
class FakeLLM:
    kwargs: dict
    calls: list = field(default_factory=list)

    def get_tokenizer(self):
        return "tokenizer"

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append((list(prompts), list(params), list(lora_request)))
        outs = []
        for prompt, p, lora in zip(prompts, params, lora_request, strict=True):
            tag = "base" if lora is None else lora.name
            completions = [
                types.SimpleNamespace(
                    text=f"{tag}:{prompt}:{k}",
                    token_ids=[1] * (k + 1),
                    finish_reason="length" if k + 1 >= p.max_tokens else "stop",
                )
                for k in range(p.n)
            ]
            outs.append(types.SimpleNamespace(outputs=completions))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    made: list[FakeLLM] = []
    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda **kw: made.append(FakeLLM(kw)) or made[-1]
    vllm.SamplingParams = SamplingParams
    lora_pkg, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    for name, mod in {"vllm": vllm, "vllm.lora": lora_pkg, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return made


def test_adapters_travel_per_prompt_and_samples_fan_out(fake_vllm, tiny_model_dir: Path) -> None:
    from codetune.bench.generate_vllm import VLLMGenerator

    gen = VLLMGenerator(str(tiny_model_dir))
    gen.chunk = 3
    llm = fake_vllm[0]
    assert llm.kwargs["enable_lora"] and llm.kwargs["model"] == str(tiny_model_dir)
    a, b = Path("/runs/deep/checkpoint-20"), Path("/runs/diverse/checkpoint-20")
    jobs = [Job("0/p", "P", (0, 1), None), Job("1/p", "P", (0, 1), a), Job("2/p", "P", (0, 1), b),
            Job("1/q", "Q", (0, 1), a)]  # fmt: skip
    got: dict = {}
    cut: dict = {}
    stats = gen.run(
        jobs,
        Decoding(n=2, temperature=0.8, max_new_tokens=2),
        on_result=lambda k, s, t, c: got.__setitem__((k, s), t) or cut.__setitem__((k, s), c),
        progress=False,
    )
    assert [cut[("0/p", 0)], cut[("0/p", 1)]] == [
        False,
        True,
    ]  # the fake's sample 1 is 2 tokens long: "length"
    assert [len(c[0]) for c in llm.calls] == [3, 1]  # chunks of 3 prompts
    loras = [r for call in llm.calls for r in call[2]]
    assert loras[0] is None and loras[1].path == loras[3].path == str(a) and loras[2].path == str(b)
    assert loras[1].lora_int_id == loras[3].lora_int_id != loras[2].lora_int_id
    assert got[("0/p", 1)] == "base:P:1" and got[("2/p", 0)] == f"{loras[2].name}:P:0"
    assert len(got) == 8 and stats.sequences == 8 and stats.new_tokens == 4 * (1 + 2)
    seeds = [p.seed for call in llm.calls for p in call[1]]
    assert len(set(seeds)) == 4  # sampled: a seed per prompt

    greedy: dict = {}
    gen.run(
        jobs[:1], Decoding(n=2), on_result=lambda k, s, t, _cut: greedy.__setitem__((k, s), t), progress=False
    )
    params = llm.calls[-1][1][0]
    assert params.n == 1 and params.seed is None and greedy[("0/p", 0)] == greedy[("0/p", 1)] == "base:P:0"


def test_answers_end_at_their_program_as_on_the_hf_backend(fake_vllm, tiny_model_dir: Path) -> None:
    """vLLM's stop strings cannot say "a complete program": the answer is cut after generation, and an answer that
    reached the limit after its program is complete is not flagged as cut."""
    from codetune.bench.generate_vllm import VLLMGenerator

    gen = VLLMGenerator(str(tiny_model_dir))
    seen: dict = {}
    for stop_at_program in (False, True):
        gen.run(
            [Job("0/p", "```python\nx = 1\n```\nmore words", (0,), None)],
            Decoding(max_new_tokens=1, stop_at_program=stop_at_program),
            on_result=lambda k, s, t, c, key=stop_at_program: seen.__setitem__(key, (t, c)),
            progress=False,
        )
    assert seen[False] == ("base:```python\nx = 1\n```\nmore words:0", True)  # "length" in the stand-in
    assert seen[True] == ("base:```python\nx = 1\n```", False)


def test_a_dora_adapter_is_refused_before_generating(fake_vllm, tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.bench.generate_vllm import VLLMGenerator
    from codetune.errors import CodetuneError
    from codetune.models.tiny import save_random_adapter

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    dora = save_random_adapter(base, tmp_path / "dora", targets=["q_proj"], use_dora=True)
    gen = VLLMGenerator(str(tiny_model_dir))
    with pytest.raises(CodetuneError, match=r"dora: a DoRA adapter \(use_dora\), which vLLM cannot serve"):
        gen.run([Job("0/p", "P", (0,), None), Job("1/p", "P", (0,), dora)], Decoding(), on_result=print)
    assert fake_vllm[0].calls == []
