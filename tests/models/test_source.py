"""Model specs resolve to a catalog name, a GGUF file, a folder or a hub id, or fail with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetune.errors import CodetuneError
from codetune.models.load import load_model
from codetune.models.source import resolve


def test_kinds(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert resolve("qwen2.5-coder-0.5b-instruct").kind == "catalog"
    assert resolve("Qwen/Qwen2.5-Coder-1.5B-Instruct").kind == "hub"
    assert resolve(str(tiny_model_dir)).kind == "folder"
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    assert resolve(str(g)).kind == "gguf"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("/no/such/model.gguf", "GGUF file not found"),
        ("./not-a-model", "unknown model"),
        ("qwen-9000", "unknown model 'qwen-9000'"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(CodetuneError, match=message):
        resolve(spec)


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(CodetuneError, match="no config.json"):
        resolve(str(tmp_path))


def test_truncated_gguf_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODETUNE_HOME", str(tmp_path / "home"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(CodetuneError, match="not a readable GGUF file"):
        load_model(str(bad))
    leftovers = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert leftovers == []  # no lock file or half-made copy in the cache


def test_tiny_model_loads_with_real_tokenizer(tiny_model_dir: Path) -> None:
    model, tok = load_model(str(tiny_model_dir))
    assert model.config.model_type == "qwen2"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert tok("def f(x):\n    return x")["input_ids"] == [750, 282, 2075, 982, 262, 470, 856]
