"""codetune's decoding loop: the same greedy tokens as transformers' `generate` on left-padded batches, with
end-of-turn ids, `min_new_tokens`, stop strings and early exit once every row is done; sampled tokens that follow
temperature and top-p, seeded. Its compiled greedy form, with adapters, is checked against eager generation in
test_fast_generate.py."""

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
    # every row ends by step 6
    stops = sorted({row[i] for row, i in zip(free_run, (2, 5, 1, 3, 4), strict=True)})
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


@pytest.mark.parametrize("k", [None, 1, 2, 4])
@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.8), (2.0, 0.5)])
def test_sampled_tokens_follow_temperature_and_top_p(temperature, top_p, k):
    """Draw 40,000 tokens from one row of scores: frequencies match softmax(scores / T) cut to the top-p nucleus and
    renormalized, as transformers' processors define it. `k`: `pick_eager` ranking only the k most likely tokens
    (k=1 never holds the nucleus here, so it falls back to `pick`; k=2 and 4 hold it for these settings)."""
    import functools

    import torch

    from codetune.bench.decode import pick, pick_eager

    if k is not None:
        pick = functools.partial(pick_eager, k=k)

    scores = torch.tensor([2.0, 1.5, 0.3, 0.0, -1.0, -3.0])
    probs = (scores / temperature).softmax(-1)
    ranked = probs.sort(descending=True)
    keep = ranked.values.cumsum(-1) - ranked.values < top_p  # tokens whose predecessors hold less than top_p
    want = torch.zeros_like(probs)
    want[ranked.indices[keep]] = probs[ranked.indices[keep]]
    want /= want.sum()
    torch.manual_seed(0)
    drawn = pick(scores.expand(40_000, -1).clone(), temperature, top_p)
    got = torch.bincount(drawn, minlength=len(scores)).float() / len(drawn)
    assert (got[want == 0] == 0).all()  # never outside the nucleus
    torch.testing.assert_close(got, want, atol=0.01, rtol=0)


def test_sampled_decoding_is_seeded_and_near_zero_temperature_is_greedy(setup):
    import torch

    model, ids, mask = setup
    loop = DecodeLoop(compile=False)
    with torch.inference_mode():
        greedy = loop.generate(model, ids, mask, max_new_tokens=10, stop_ids=[])
        runs = []
        for seed in (1, 1, 2):
            torch.manual_seed(seed)
            runs.append(loop.generate(model, ids, mask, max_new_tokens=10, stop_ids=[], temperature=1.0))
        cold = loop.generate(model, ids, mask, max_new_tokens=10, stop_ids=[], temperature=1e-4, top_p=0.95)
    assert runs[0] == runs[1] != runs[2]
    assert runs[0] != greedy and cold == greedy


def test_compiled_sampling_is_seeded(setup):
    """The sampled step compiles (sort, scatter and random draws inside the graph) and stays reproducible."""
    import torch

    model, ids, mask = setup
    loop = DecodeLoop(compile=True)
    with torch.inference_mode():
        runs = []
        for seed in (3, 3, 4):
            torch.manual_seed(seed)
            runs.append(
                loop.generate(model, ids, mask, max_new_tokens=6, stop_ids=[], temperature=0.7, top_p=0.9)
            )
    assert runs[0] == runs[1] != runs[2]
