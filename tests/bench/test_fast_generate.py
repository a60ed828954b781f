"""codetune's generation path on token ids: left padding, batched greedy output equal to one-at-a-time output, and the
static cache used on CUDA (checked here on CPU) equal to the dynamic one."""

from __future__ import annotations

import types

import pytest

from codetune.bench.generate import Decoding
from codetune.bench.generate_hf import HFGenerator
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


@pytest.mark.parametrize("decode_loop", [False, True], ids=["generate", "decode_loop"])
def test_compiled_generation_of_several_models_equals_each_model_eager(tiny_model_dir, tmp_path, decode_loop):
    """The compiled path (static cache + torch.compile, as on CUDA; forced here on CPU) generating for the base model
    and three adapters in one call gives every row its own model's eager tokens, and compiles one graph per adapter
    configuration plus one for the base model, however many adapters and batches share it. (PEFT mixed batches under
    compile kept the routing of the batch they were traced on and gave other batches wrong answers.) The same holds
    with codetune's decoding loop in place of `generate`."""
    import torch
    from torch._dynamo.utils import counters
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adapters = [
        save_random_adapter(model, tmp_path / f"a{i}", targets=targets, r=r, std=0.5, seed=i)
        for i, r in enumerate((4, 4, 8))  # two configurations: r=4 twice (one slot), r=8
    ]
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 5000, (n,), generator=g).tolist() for n in (23, 140, 61, 9, 97)]
    kw = {"min_new_tokens": 10, "pad_token_id": 151643, "eos_token_id": [151645]}
    dec, tok = Decoding(max_new_tokens=10), _tokenizer(tiny_model_dir)
    models = [None, *adapters]
    eager = HFGenerator(model, tok, batch_size=3, compile=False)
    want = [row for a in models for row in eager.generate_ids(prompts, dec, adapters=[a] * 5, **kw)]
    assert len({str(want[m * 5 : m * 5 + 5]) for m in range(4)}) == 4  # four different models

    compiled = HFGenerator(model, tok, batch_size=3, compile=True, decode_loop=decode_loop)
    counters.clear()
    got = compiled.generate_ids(prompts * 4, dec, adapters=[a for a in models for _ in prompts], **kw)
    assert not compiled._eager  # it compiled, and did not fall back
    if decode_loop:  # each batch's later steps skip the guards that do not tell base and adapter graphs apart
        assert compiled._loop.skip_guards
    assert got == want
    assert counters["frames"]["ok"] <= 3  # base, the r=4 slot, the r=8 slot
    assert not hasattr(model, "peft_config") or not model.peft_config  # adapters removed after


@pytest.mark.parametrize("mask_kind", ["bool", "additive", "none"])
def test_grouped_decode_attention_equals_sdpa_without_copying_the_cache(mask_kind, monkeypatch):
    import torch
    import transformers.integrations.sdpa_attention as sdpa

    from codetune.bench.speed import grouped_decode_sdpa

    module = types.SimpleNamespace(num_key_value_groups=3, is_causal=True)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(5, heads, n, 8, generator=g) for heads, n in ((6, 1), (2, 11), (2, 11)))
    keep = torch.rand(5, 1, 1, 11, generator=g) > 0.4
    keep[..., -1] = True
    additive = torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    mask = {"bool": keep, "additive": additive, "none": None}[mask_kind]
    want, _ = sdpa.sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)

    def no_copies(*args):
        raise AssertionError("repeat_kv copied the KV cache")

    monkeypatch.setattr(sdpa, "repeat_kv", no_copies)
    got, _ = grouped_decode_sdpa(module, q, k, v, mask, scaling=0.3)
    assert got.shape == want.shape == (5, 1, 6, 8)
    torch.testing.assert_close(got, want)
    # several query positions (prefill) take transformers' path, which copies when there is a mask
    if mask is not None:
        with pytest.raises(AssertionError, match="copied"):
            grouped_decode_sdpa(module, torch.cat([q, q], 2), k, v, mask.expand(5, 1, 2, 11))


def test_compiled_generation_folds_grouped_query_heads(tiny_model_dir, qwen_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.bench.speed import DECODE_ATTENTION

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    eager = HFGenerator(model, qwen_tokenizer, compile=False)
    eager.generate_ids([[5, 6, 7]], Decoding(max_new_tokens=2), pad_token_id=0, eos_token_id=[1])
    assert model.config._attn_implementation == "sdpa"  # eager generation leaves the model as it is
    compiled = HFGenerator(model, qwen_tokenizer, compile=True)
    compiled._fast_kwargs = lambda: {"cache_implementation": "static"}  # the switch, without compiling here
    compiled.generate_ids([[5, 6, 7]], Decoding(max_new_tokens=2), pad_token_id=0, eos_token_id=[1])
    assert model.config._attn_implementation == DECODE_ATTENTION
