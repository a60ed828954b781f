"""The real 0.5B catalog model: assembled from PyPI parts, loaded through transformers' GGUF path, generates."""

from __future__ import annotations

import pytest

from codetune.models.info import model_info
from codetune.models.load import load_model


@pytest.mark.slow
def test_info_of_real_catalog_model(real_model_spec: str) -> None:
    info = model_info(real_model_spec)
    assert info["architecture"] == "qwen2"
    assert 620e6 < info["parameters"] < 640e6  # output projection stored apart from the embeddings
    assert 490e6 < info["parameters_tied"] < 500e6
    assert info["chat_template"] is True


@pytest.mark.slow
def test_real_model_generates_sensible_answer(real_model_spec: str) -> None:
    import torch

    model, tok = load_model(real_model_spec)
    msgs = [{"role": "user", "content": "What is 7 + 5? Reply with the number only."}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "12" in answer


@pytest.mark.slow
def test_truncated_real_gguf_is_named(real_model_spec: str, tmp_path, monkeypatch) -> None:
    from codetune.errors import CodetuneError
    from codetune.models.assemble import gguf_path
    from codetune.models.catalog import get_entry

    src = gguf_path(get_entry(real_model_spec))
    cut = tmp_path / "cut.gguf"
    with open(src, "rb") as f:
        cut.write_bytes(f.read(64 << 20))
    monkeypatch.setenv("CODETUNE_HOME", str(tmp_path / "home"))
    with pytest.raises(CodetuneError, match="(truncated|not a readable) GGUF file"):
        load_model(str(cut))
