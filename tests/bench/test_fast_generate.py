"""codetune's generation path on token ids: left padding, batched greedy output equal to one-at-a-time output, and the
static cache used on CUDA (checked here on CPU) equal to the dynamic one."""

from __future__ import annotations

from codetune.bench.generate import Decoding, HFGenerator
from codetune.bench.speed import fast_generate_kwargs, left_pad


def test_left_pad_right_aligns_and_rounds_width():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0, multiple=4)
    assert ids.tolist() == [[0, 1, 2, 3], [0, 0, 0, 4]]
    assert mask.tolist() == [[0, 1, 1, 1], [0, 0, 0, 1]]


def test_fast_kwargs_are_empty_on_cpu_and_static_when_compiling(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert fast_generate_kwargs(model) == {}
    kw = fast_generate_kwargs(model, compile=True)
    assert kw["cache_implementation"] == "static" and kw["compile_config"].mode == "reduce-overhead"


def test_batched_greedy_equals_one_at_a_time(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 5000, (n,), generator=g).tolist() for n in (6, 19, 2, 11, 14)]
    eos, pad = 151645, 151643
    gen = HFGenerator(model, _tokenizer(tiny_model_dir), batch_size=2)
    batched = gen.generate_ids(prompts, Decoding(max_new_tokens=6), pad_token_id=pad, eos_token_id=[eos])
    for prompt, got in zip(prompts, batched, strict=True):
        with torch.inference_mode():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False, pad_token_id=pad,
                                 eos_token_id=eos)  # fmt: skip
        want = out[0, len(prompt) :].tolist()
        want = want[: want.index(eos) + 1] if eos in want else want
        assert got == want


def test_static_cache_with_left_padding_matches_dynamic(tiny_model_dir):
    """The static cache the fast path uses on CUDA gives the same greedy tokens as the dynamic one (here on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(10, 5000, (n,), generator=g).tolist() for n in (9, 3, 17)]
    gen = HFGenerator(model, _tokenizer(tiny_model_dir), batch_size=3, compile=False)
    kw = {"min_new_tokens": 5, "pad_token_id": 151643, "eos_token_id": [151645]}
    static = gen.generate_ids(prompts, Decoding(max_new_tokens=5), cache_implementation="static", **kw)
    dynamic = gen.generate_ids(prompts, Decoding(max_new_tokens=5), **kw)
    assert static == dynamic and all(len(r) == 5 for r in static)


def _tokenizer(tiny_model_dir):
    from codetune.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))
