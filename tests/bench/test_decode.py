"""codetune's decoding loop: the same greedy tokens as transformers' `generate` on left-padded batches, with
end-of-turn ids, `min_new_tokens`, stop strings and early exit once every row is done. Its compiled form, with
adapters, is checked against eager generation in test_fast_generate.py."""

from __future__ import annotations

import pytest

from codetune.bench.decode import DecodeLoop
from codetune.bench.speed import left_pad

PAD = 151643


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # larger weights than the tiny model's init, which repeats one token forever
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.normal_(0, 2 / p.shape[1] ** 0.5, generator=g)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(10, 5000, (n,), generator=g).tolist() for n in (6, 19, 2, 11, 14)]
    return model, *left_pad(prompts, PAD)


def _generate(model, ids, mask, new, **kw):
    import torch

    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                             pad_token_id=PAD, **kw)  # fmt: skip
    return out[:, ids.shape[1] :].tolist()


def _cut(rows, stops):
    return [next((r[: i + 1] for i, t in enumerate(r) if t in stops), r) for r in rows]


def test_same_tokens_as_generate_and_stops_once_every_row_ended(setup):
    import torch

    model, ids, mask = setup
    free_run = _generate(model, ids, mask, 12, eos_token_id=[-1])
    stops = sorted(
        {row[i] for row, i in zip(free_run, (2, 5, 1, 3, 4), strict=True)}
    )  # every row ends by step 6
    want = _cut(_generate(model, ids, mask, 30, eos_token_id=stops), stops)
    with torch.inference_mode():
        got = DecodeLoop(compile=False, check_every=4).generate(
            model, ids, mask, max_new_tokens=30, stop_ids=stops
        )
    assert _cut(got, stops) == want
    assert len(got[0]) == 8  # read at 4 (some rows still running) and at 8 (all ended), not run to 30


def test_min_new_tokens_rules_out_end_of_turn_like_generate(setup):
    import torch

    model, ids, mask = setup
    stops = sorted({row[1] for row in _generate(model, ids, mask, 4, eos_token_id=[-1])})
    want = _generate(model, ids, mask, 9, eos_token_id=stops, min_new_tokens=9)
    with torch.inference_mode():
        got = DecodeLoop(compile=False).generate(
            model, ids, mask, max_new_tokens=9, min_new_tokens=9, stop_ids=stops, cache_len=64
        )
    assert got == want and not any(t in stops for row in got for t in row)


def test_stop_text_ends_rows_and_sees_only_new_tokens(setup):
    import torch

    model, ids, mask = setup
    free_run = _generate(model, ids, mask, 20, eos_token_id=[-1])
    seen: list[list[list[int]]] = []

    def stop_text(rows):
        seen.append(rows)
        return [len(r) >= 5 and r[:5] == want[:5] for r, want in zip(rows, free_run, strict=True)]

    with torch.inference_mode():
        got = DecodeLoop(compile=False, check_every=5).generate(
            model, ids, mask, max_new_tokens=20, stop_ids=[], stop_text=stop_text
        )
    assert got == [row[:5] for row in free_run]
    assert [len(r) for r in seen[0]] == [5] * 5
