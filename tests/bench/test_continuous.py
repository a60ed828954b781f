"""Continuous batching (eager decoding) gives `generate`'s tokens: rows that end early leave, waiting prompts join,
stop ids and strings, min_new_tokens, several adapters in one batch, sampling."""

from __future__ import annotations

import pytest

from codetune.bench.generate import Decoding
from codetune.bench.generate_hf import HFGenerator

PAD = 151643
WIDTHS: list[int] = []


def _prompts(n: int, seed: int = 0) -> list[list[int]]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(10, 5000, (k,), generator=g).tolist() for k in (7, 31, 3, 18, 12, 25, 9)[:n]]


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
    return HFGenerator(model, tok, batch_size), HFGenerator(model, tok, batch_size, continuous=False)


def _forward_rows(monkeypatch) -> list[int]:
    """The number of rows of every forward pass the continuous decoder makes (and, in `WIDTHS`, its mask's width)."""
    from codetune.bench import continuous

    rows: list[int] = []
    WIDTHS.clear()
    original = continuous.decode_continuous

    def spy(model, prompts, **kw):
        forward = model.forward

        def counted(*a, **k):
            rows.append(k["input_ids"].shape[0])
            WIDTHS.append(k["attention_mask"].shape[1])
            return forward(*a, **k)

        model.forward = counted
        try:
            yield from original(model, prompts, **kw)
        finally:
            del model.forward

    monkeypatch.setattr(continuous, "decode_continuous", spy)
    return rows


def _early_stops(
    plain: HFGenerator, prompts: list[list[int]], at: list[tuple[int, int]], n: int
) -> list[int]:
    """End-of-turn ids that end row r at its s-th token (or sooner, where that token recurs), for (r, s) in `at`."""
    free = plain.generate_ids(prompts, Decoding(max_new_tokens=n), pad_token_id=PAD, eos_token_id=[PAD])
    return [free[r][s] for r, s in at]


@pytest.mark.parametrize("batch_size", [7, 3], ids=["all-at-once", "prompts-wait"])
def test_rows_leave_and_join_and_every_row_matches_generate(sharp, monkeypatch, batch_size) -> None:
    continuous, plain = _pair(sharp, batch_size)
    prompts = _prompts(7)
    kw = {"pad_token_id": PAD, "eos_token_id": _early_stops(plain, prompts, [(0, 2), (2, 7), (5, 4)], 14)}
    want = plain.generate_ids(prompts, Decoding(max_new_tokens=14), **kw)
    rows = _forward_rows(monkeypatch)
    got = continuous.generate_ids(prompts, Decoding(max_new_tokens=14), **kw)
    assert got == want
    assert min(map(len, got)) < 8 and max(map(len, got)) == 14
    assert max(rows) <= batch_size and rows[-1] < batch_size  # never more than a batch; finished rows left
    if batch_size == 3:  # prompts joined a running batch (a prefill, then full steps)
        assert rows.count(3) > rows.index(3) + 1
    # the cache holds no column that every live row ignores: never wider than the longest prompt plus its answer
    assert max(WIDTHS) <= max(map(len, prompts)) + 14


def test_min_new_tokens_and_stop_strings_as_generate(sharp) -> None:
    continuous, plain = _pair(sharp, 2)
    _, tok = sharp
    prompts = [
        "def add(a, b):",
        "Once upon a time, in a land far away, there lived a",
        "import numpy as np\nx =",
    ]
    free = plain.generate(prompts, Decoding(max_new_tokens=12))
    stop = free[1][0][3:6]
    for dec in (Decoding(max_new_tokens=12), Decoding(max_new_tokens=12, stop=(stop,))):
        assert continuous.generate(prompts, dec) == plain.generate(prompts, dec)
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    kw = {"min_new_tokens": 4, "eos_token_id": _early_stops(plain, ids, [(0, 1)], 6), "pad_token_id": PAD}
    dec = Decoding(max_new_tokens=8)
    assert continuous.generate_ids(ids, dec, **kw) == plain.generate_ids(ids, dec, **kw)


@pytest.mark.parametrize("batch_size", [12, 5])
def test_rows_of_several_adapters_keep_their_adapter(tiny_model_dir, tmp_path, batch_size) -> None:
    """Rows of the base model and two adapters share the batch; as rows leave and join, each keeps its adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    from codetune.models import load_tokenizer
    from codetune.models.tiny import save_random_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = load_tokenizer(str(tiny_model_dir))
    targets = ["q_proj", "v_proj", "down_proj"]
    adapters = [
        save_random_adapter(model, tmp_path / f"a{i}", targets=targets, std=0.5, seed=i) for i in range(2)
    ]
    prompts = _prompts(4, seed=1)
    adapter_of_row = [a for a in [None, *adapters] for _ in prompts]
    plain = HFGenerator(model, tok, batch_size=12, continuous=False)
    free = plain.generate_ids(prompts * 3, Decoding(max_new_tokens=10), pad_token_id=PAD, eos_token_id=[PAD])
    kw = {"pad_token_id": PAD, "eos_token_id": [free[1][4], free[6][2]]}
    want = plain.generate_ids(prompts * 3, Decoding(max_new_tokens=10), adapters=adapter_of_row, **kw)
    assert len({str(want[m * 4 : m * 4 + 4]) for m in range(3)}) == 3  # three different models
    got = HFGenerator(model, tok, batch_size=batch_size).generate_ids(
        prompts * 3, Decoding(max_new_tokens=10), adapters=adapter_of_row, **kw
    )
    assert got == want
    assert len({len(r) for r in got}) > 1  # rows did end at different steps


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_sampling_is_seeded_and_follows_the_temperature(tiny, top_p) -> None:
    continuous, _ = _pair(tiny, 3)
    prompts = ["def add(a, b):", "import numpy as np\nx ="]
    dec = Decoding(n=4, temperature=1.0, top_p=top_p, max_new_tokens=8, seed=5)
    first = continuous.generate(prompts, dec)
    assert first == continuous.generate(prompts, dec)
    assert len(set(first[0])) > 1
    cold = continuous.generate(prompts, Decoding(n=2, temperature=1e-4, max_new_tokens=8, seed=5))
    assert cold == [[g[0]] * 2 for g in continuous.generate(prompts, Decoding(max_new_tokens=8))]


def test_the_samples_of_a_prompt_are_prefilled_once(sharp, monkeypatch) -> None:
    """Sampling makes one row per sample; rows with the same prompt and adapter that join together share one prefill
    (its cache copied), and still draw their own tokens."""
    continuous, _ = _pair(sharp, 8)
    prompts = ["def add(a, b):", "Once upon a time, in a land far away, there lived a"]
    rows = _forward_rows(monkeypatch)
    hot = continuous.generate(prompts, Decoding(n=4, temperature=1.5, max_new_tokens=6, seed=3))
    assert rows[0] == 2 and rows[1] == 8  # the prefill: two prompts; the first step: eight rows
    assert all(len(set(samples)) > 1 for samples in hot)
    cold = continuous.generate(prompts, Decoding(n=4, temperature=1e-4, max_new_tokens=6, seed=3))
    assert cold == [[g[0]] * 4 for g in continuous.generate(prompts, Decoding(max_new_tokens=6))]


def test_the_growing_cache_layer_appends_in_place_and_keeps_every_column():
    """Each decoding step writes its column into the buffer's spare room (no copy of the cache) and the layer returns
    exactly what concatenation would; a trimmed window keeps appending in place; selecting rows indexes the buffer
    with its room, so the next step appends in place too; running out of room copies into a new buffer."""
    import torch

    from codetune.bench.continuous import _growing_layer_class

    layer = _growing_layer_class()()
    layer.spare = 3
    torch.manual_seed(0)
    cols = [torch.randn(2, 2, 5, 4)] + [torch.randn(2, 2, 1, 4) for _ in range(5)]
    keys, _ = layer.update(cols[0], cols[0] * 2)
    storage = keys.untyped_storage().data_ptr()
    for i in range(1, 4):  # three steps fit the spare room
        keys, values = layer.update(cols[i], cols[i] * 2)
        assert keys.untyped_storage().data_ptr() == storage
        torch.testing.assert_close(keys, torch.cat(cols[: i + 1], dim=-2), rtol=0, atol=0)
        torch.testing.assert_close(values, torch.cat(cols[: i + 1], dim=-2) * 2, rtol=0, atol=0)
    layer.keys, layer.values = layer.keys[..., 2:, :], layer.values[..., 2:, :]  # `_Batch.select`'s trim
    keys, _ = layer.update(cols[4], cols[4] * 2)  # the trim freed no room at the end: a new buffer
    assert keys.untyped_storage().data_ptr() != storage
    torch.testing.assert_close(keys, torch.cat(cols[:5], dim=-2)[..., 2:, :], rtol=0, atol=0)
    storage = keys.untyped_storage().data_ptr()
    layer.keys, layer.values = layer.keys[..., 1:, :], layer.values[..., 1:, :]
    keys, _ = layer.update(cols[5], cols[5] * 2)  # a trimmed window with room left appends in place
    assert keys.untyped_storage().data_ptr() == storage
    torch.testing.assert_close(keys, torch.cat(cols, dim=-2)[..., 3:, :], rtol=0, atol=0)
    layer.batch_select_indices(torch.tensor([1]))  # indexes the buffer, room included
    selected = layer.keys.untyped_storage().data_ptr()
    assert selected != storage
    keys, _ = layer.update(cols[1][1:], cols[1][1:] * 2)
    assert keys.untyped_storage().data_ptr() == selected
    torch.testing.assert_close(keys, torch.cat([*cols, cols[1]], dim=-2)[1:, :, 3:, :], rtol=0, atol=0)


@pytest.mark.parametrize("continuous", [True, False], ids=["continuous", "generate"])
def test_dora_adapters_are_generated_one_adapter_at_a_time(tiny_model_dir, tmp_path, continuous) -> None:
    """PEFT cannot route DoRA adapters per row (`adapter_names`): rows of DoRA checkpoints are still generated in one
    call with the base model's, one adapter at a time, each with its own model's tokens."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    from codetune.models import load_tokenizer
    from codetune.models.tiny import save_random_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tok = load_tokenizer(str(tiny_model_dir))
    targets = ["q_proj", "v_proj", "down_proj"]
    adapters = []
    for i in range(2):
        torch.manual_seed(10 + i)  # LoRA's A matrices too: outputs must not depend on what ran before
        folder = save_random_adapter(
            model, tmp_path / f"d{i}", targets=targets, std=2.0, seed=i, use_dora=True
        )
        # DoRA renormalises each column, so a random B alone barely moves the tiny model: rescale the magnitudes
        file = str(folder / "adapter_model.safetensors")
        g = torch.Generator().manual_seed(20 + i)
        weights = {
            k: v * (0.2 + 3 * torch.rand(v.shape, generator=g)) if "magnitude" in k else v
            for k, v in load_file(file).items()
        }
        save_file(weights, file)
        adapters.append(folder)
    prompts = _prompts(4, seed=2)
    dec, kw = Decoding(max_new_tokens=10), {"pad_token_id": PAD, "eos_token_id": [PAD]}
    alone = [
        HFGenerator(model, tok, batch_size=4).generate_ids(prompts, dec, adapters=[a] * len(prompts), **kw)
        for a in [None, *adapters]
    ]
    assert len({str(x) for x in alone}) == 3  # three different models
    together = HFGenerator(model, tok, batch_size=5, continuous=continuous).generate_ids(
        prompts * 3, dec, adapters=[a for a in [None, *adapters] for _ in prompts], **kw
    )
    assert together == [ids for rows in alone for ids in rows]
    assert not hasattr(model, "peft_config") or not model.peft_config
