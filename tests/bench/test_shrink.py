"""Eager decoding that drops finished rows gives `generate`'s tokens: greedy, stop ids and strings, several adapters."""

from __future__ import annotations

import pytest

from codetune.bench.generate import Decoding
from codetune.bench.generate_hf import HFGenerator

PAD = 151643


def _prompts(n: int, seed: int = 0) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, 5000, (k,), generator=g).tolist() for k in (7, 31, 3, 18, 12)[:n]]


@pytest.fixture(scope="module")
def sharp(tiny_model_dir):
    """The tiny model with attention sharpened (q and k scaled up), so each token depends on positions and on which
    earlier tokens it sees: a random tiny model's near-uniform attention would hide position and mask mistakes."""
    import torch

    from codetune.models import load_model

    model, tok = load_model(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(12)
            layer.self_attn.k_proj.weight.mul_(12)
    return model, tok


def _pair(tiny, batch_size: int = 5) -> tuple[HFGenerator, HFGenerator]:
    model, tok = tiny
    return HFGenerator(model, tok, batch_size, shrink=True), HFGenerator(model, tok, batch_size, shrink=False)


def _calls(monkeypatch) -> list[int]:
    """The batch size of every forward pass of the shrinking loop."""
    from codetune.bench import shrink

    rows: list[int] = []
    original = shrink.decode_shrinking

    def spy(model, ids, mask, **kw):
        forward = model.forward

        def counted(*a, **k):
            rows.append(k["input_ids"].shape[0])
            return forward(*a, **k)

        model.forward = counted
        try:
            return original(model, ids, mask, **kw)
        finally:
            del model.forward

    monkeypatch.setattr(shrink, "decode_shrinking", spy)
    return rows


def test_rows_that_end_early_leave_the_batch_and_the_rest_match_generate(sharp, monkeypatch) -> None:
    shrinking, plain = _pair(sharp)
    prompts = _prompts(5)
    free = plain.generate_ids(prompts, Decoding(max_new_tokens=14), pad_token_id=PAD, eos_token_id=[PAD])
    # end-of-turn ids that end rows 0 and 2 early (at their 3rd and 8th tokens, or sooner where they recur)
    stops = [free[0][2], free[2][7]]
    kw = {"pad_token_id": PAD, "eos_token_id": stops}
    want = plain.generate_ids(prompts, Decoding(max_new_tokens=14), **kw)
    rows = _calls(monkeypatch)
    got = shrinking.generate_ids(prompts, Decoding(max_new_tokens=14), **kw)
    assert got == want
    assert len(got[0]) <= 3 and len(got[2]) <= 8 and max(map(len, got)) == 14
    assert rows[0] == 5 and rows[-1] < 5 and rows == sorted(rows, reverse=True)  # the batch shrank
    assert sum(rows[1:]) == sum(len(r) for r in got) - len(got)  # one row-step per token after the first


def test_min_new_tokens_and_stop_strings_as_generate(sharp) -> None:
    shrinking, plain = _pair(sharp)
    _, tok = sharp
    prompts = [
        "def add(a, b):",
        "Once upon a time, in a land far away, there lived a",
        "import numpy as np\nx =",
    ]
    free = plain.generate(prompts, Decoding(max_new_tokens=12))
    stop = free[1][0][3:6]
    for dec in (Decoding(max_new_tokens=12), Decoding(max_new_tokens=12, stop=(stop,))):
        assert shrinking.generate(prompts, dec) == plain.generate(prompts, dec)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    early = plain.generate_ids(ids, Decoding(max_new_tokens=6), eos_token_id=[PAD], pad_token_id=PAD)
    kw = {"min_new_tokens": 4, "eos_token_id": [early[0][1]], "pad_token_id": PAD}
    assert shrinking.generate_ids(ids, Decoding(max_new_tokens=8), **kw) == plain.generate_ids(
        ids, Decoding(max_new_tokens=8), **kw
    )


def test_mixed_adapter_batches_keep_each_rows_adapter(tiny_model_dir, tmp_path) -> None:
    """Rows of the base model and two adapters share eager batches; when rows leave, the others keep their adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.models import load_tokenizer
    from codetune.models.tiny import save_random_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = load_tokenizer(str(tiny_model_dir))
    adapters = [
        save_random_adapter(
            model, tmp_path / f"a{i}", targets=["q_proj", "v_proj", "down_proj"], std=0.5, seed=i
        )
        for i in range(2)
    ]
    prompts = _prompts(4, seed=1)
    models = [None, *adapters]
    plain = HFGenerator(model, tok, batch_size=12, shrink=False)
    free = plain.generate_ids(prompts * 3, Decoding(max_new_tokens=10), pad_token_id=PAD, eos_token_id=[PAD])
    kw = {"pad_token_id": PAD, "eos_token_id": [free[1][4], free[6][2]]}
    adapter_of_row = [a for a in models for _ in prompts]
    want = plain.generate_ids(prompts * 3, Decoding(max_new_tokens=10), adapters=adapter_of_row, **kw)
    assert len({str(want[m * 4 : m * 4 + 4]) for m in range(3)}) == 3  # three different models
    got = HFGenerator(model, tok, batch_size=12).generate_ids(
        prompts * 3, Decoding(max_new_tokens=10), adapters=adapter_of_row, **kw
    )
    assert got == want
    assert len({len(r) for r in got}) > 1  # rows did end at different steps


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_sampling_is_seeded_and_follows_the_temperature(tiny, top_p) -> None:
    shrinking, _ = _pair(tiny)
    prompts = ["def add(a, b):", "import numpy as np\nx ="]
    dec = Decoding(n=4, temperature=1.0, top_p=top_p, max_new_tokens=8, seed=5)
    first = shrinking.generate(prompts, dec)
    assert first == shrinking.generate(prompts, dec)
    assert len(set(first[0])) > 1
    cold = shrinking.generate(prompts, Decoding(n=2, temperature=1e-4, max_new_tokens=8, seed=5))
    assert cold == [[g[0]] * 2 for g in shrinking.generate(prompts, Decoding(max_new_tokens=8))]
