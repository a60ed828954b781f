"""The padding-free decoder: same loss as the padded path, no attention across examples, generation unchanged."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fast_fixtures import PAD, sequences, sharp_model  # noqa: E402

from codetune.train import attention  # noqa: E402
from codetune.train.unpad import compare_paths, unpad_backbone  # noqa: E402


def _batch(seqs, completion_from: int = 0, padding_free: bool = False) -> dict:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [
        {"input_ids": s, "completion_mask": [0] * completion_from + [1] * (len(s) - completion_from)}
        for s in seqs
    ]
    return DataCollatorForLanguageModeling(pad_token_id=PAD, padding_free=padding_free)(rows)


def _fake_varlen(calls: list):
    """A CPU stand-in with torch 2.13's varlen_attn signature, computing per-example causal attention."""

    def varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
                    enable_gqa=False, seqused_k=None, block_table=None, num_splits=None):  # fmt: skip
        assert window_size == (-1, 0) and enable_gqa and k.shape[1] < q.shape[1]
        calls.append(cu_q.tolist())
        return attention._reference_varlen(q, k, v, cu_q, scale)

    return varlen_attn


@pytest.fixture(params=["sdpa-block-mask", "varlen"])
def fast_model(request, tiny_model_dir, monkeypatch):
    """The tiny model on codetune's padding-free path, attention by SDPA + block mask or by a (CPU) varlen kernel."""
    model = sharp_model(tiny_model_dir)
    calls: list = []
    if request.param == "varlen":
        monkeypatch.setattr(attention, "_varlen_fn", lambda: _fake_varlen(calls))
        monkeypatch.setattr(attention, "varlen_ready", lambda device, dtype: True)
    unpad_backbone(model, device="cuda")  # registers codetune_varlen even on this CPU model
    model.varlen_calls = calls
    return model


def test_fast_path_loss_equals_padded_loss(tiny_model_dir, fast_model):
    plain_model = sharp_model(tiny_model_dir)
    seqs = sequences()
    padded = _batch(seqs, completion_from=2)
    with torch.no_grad():
        plain = plain_model(**padded).loss.item()
        fast = fast_model(**padded).loss.item()
        free = fast_model(**_batch(seqs, completion_from=2, padding_free=True)).loss.item()
    assert fast == pytest.approx(plain, rel=1e-3)
    assert free == pytest.approx(plain, rel=1e-3)
    if fast_model.varlen_calls:  # the varlen kernel saw one row with the real boundaries
        assert fast_model.varlen_calls[0] == [0, 7, 30, 33, 49, 60]


def test_a_row_filled_to_a_bucket_gives_the_same_loss_and_gradients(tiny_model_dir, fast_model):
    """The filler example that rounds the row up (for CUDA graphs) changes neither the loss nor any gradient."""
    seqs = sequences()  # 60 real tokens
    padded = _batch(seqs, completion_from=2)

    def loss_and_grads(model):
        model.zero_grad()
        loss = model(**padded).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    plain_loss, plain_grads = loss_and_grads(fast_model)
    unpad_backbone(fast_model, device="cuda", bucket=16)
    filled_loss, filled_grads = loss_and_grads(fast_model)
    assert filled_loss == pytest.approx(plain_loss, rel=1e-6)
    for a, b in zip(filled_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)  # summation order differs
    if fast_model.varlen_calls:  # one filler example of 4 tokens: a row of 64
        assert fast_model.varlen_calls[-1] == [0, 7, 30, 33, 49, 60, 64]


def test_no_cross_example_leakage(fast_model):
    seqs = sequences()
    changed = [[(t + 7) % 5000 for t in seqs[0]], *seqs[1:]]
    with torch.no_grad():
        before = fast_model(**_batch(seqs)).logits
        after = fast_model(**_batch(changed)).logits
    for i in range(1, len(seqs)):
        n = len(seqs[i])
        torch.testing.assert_close(after[i, :n], before[i, :n], atol=1e-5, rtol=0)
    assert (after[0, : len(seqs[0])] - before[0, : len(seqs[0])]).abs().max() > 1e-2


def test_leakage_check_can_fail(tiny_model_dir):
    """Control: the same packed row with one causal mask over everything does leak, so the check above can fail."""
    model = sharp_model(tiny_model_dir)
    seqs = sequences()
    changed = [[(t + 7) % 5000 for t in seqs[0]], *seqs[1:]]
    with torch.no_grad():
        before = model(input_ids=torch.tensor([sum(seqs, [])])).logits
        after = model(input_ids=torch.tensor([sum(changed, [])])).logits
    second = slice(len(seqs[0]), len(seqs[0]) + len(seqs[1]))
    assert (after[0, second] - before[0, second]).abs().max() > 1e-3


def test_compare_paths_reports_agreement(fast_model):
    report = compare_paths(fast_model, sequences(), PAD)
    assert report["loss_rel_diff"] < 1e-3
    assert report["leak_max_abs_logit_change"] < 1e-4


def test_unpadded_backbone_passes_generation_through(tiny_model_dir, fast_model):
    plain_model = sharp_model(tiny_model_dir)
    prompt = torch.tensor([[PAD, PAD, 11, 12, 13], [21, 22, 23, 24, 25]])
    mask = (prompt != PAD).long()
    kw = dict(attention_mask=mask, max_new_tokens=5, do_sample=False, pad_token_id=PAD)
    assert torch.equal(fast_model.generate(prompt, **kw), plain_model.generate(prompt, **kw))
