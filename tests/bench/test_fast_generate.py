"""codetune's fast generation path: batching by length and batched greedy output equal to one-at-a-time output."""

from __future__ import annotations

import pytest

from codetune.bench.speed import fast_generate_kwargs, generate_batched, left_pad, length_batches


def test_length_batches_cover_every_prompt_once_in_few_equal_batches():
    lengths = [5, 40, 12, 33, 7, 21, 40, 1, 18]
    batches = length_batches(lengths, max_batch=4)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 3]
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    assert length_batches(lengths, max_batch=64) == [sorted(range(9), key=lambda i: -lengths[i])]
    assert length_batches([], 4) == []
    with pytest.raises(ValueError):
        length_batches(lengths, 0)


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
    batched = generate_batched(
        model, prompts, max_new_tokens=6, pad_token_id=pad, eos_token_id=eos, max_batch=2
    )
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
    kw = dict(max_new_tokens=5, min_new_tokens=5, pad_token_id=151643, eos_token_id=151645, pad_multiple=8)
    static = generate_batched(model, prompts, fast=False, cache_implementation="static", **kw)
    dynamic = generate_batched(model, prompts, fast=False, **kw)
    assert static == dynamic and all(len(r) == 5 for r in static)
