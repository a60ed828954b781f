"""The varlen attention call across torch versions."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from codetune.train import attention  # noqa: E402


@pytest.mark.parametrize("signature", ["2.13", "2.9"])
def test_varlen_call_adapts_to_torch_versions(signature):
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(30, 6, 8, generator=g),
        torch.randn(30, 2, 8, generator=g),
        torch.randn(30, 2, 8, generator=g),
    )
    cu = torch.tensor([0, 12, 30], dtype=torch.int32)
    seen = {}

    def new(q, k, v, cu_q, cu_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
            enable_gqa=False):  # fmt: skip
        seen.update(window=window_size, gqa=enable_gqa, heads=k.shape[1])
        return attention._reference_varlen(q, k, v, cu_q, scale)

    def old(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False, return_aux=None):
        seen.update(causal=is_causal, heads=k.shape[1])
        return attention._reference_varlen(q, k, v, cu_q, q.shape[-1] ** -0.5)

    out = attention._call_varlen(new if signature == "2.13" else old, q, k, v, cu, 18, 8**-0.5)
    torch.testing.assert_close(out, attention._reference_varlen(q, k, v, cu, 8**-0.5))
    if signature == "2.13":
        assert seen == {"window": (-1, 0), "gqa": True, "heads": 2}
    else:  # no enable_gqa: the kv heads are repeated; no scale: only the default scale is accepted
        assert seen == {"causal": True, "heads": 6}
        with pytest.raises(RuntimeError, match="scale"):
            attention._call_varlen(old, q, k, v, cu, 18, 0.5)


def test_varlen_not_ready_on_cpu():
    assert not attention.varlen_ready("cpu", torch.bfloat16)
