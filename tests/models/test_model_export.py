"""Merging a LoRA adapter into its base: the saved folder computes what the adapter model computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetune.errors import CodetuneError
from codetune.models import export
from codetune.models.export import PROVENANCE, merge_adapter

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TEXT = "Read N and print the sum of 1..N.\nn = int(input())\nprint(n * (n + 1) // 2)\n"


@pytest.fixture(scope="module", params=["lora", "dora"])
def adapter(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import save_random_adapter

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    dest = tmp_path_factory.mktemp("adapter") / "a"
    return save_random_adapter(
        model, dest, targets=TARGETS, std=0.5, seed=3, use_dora=request.param == "dora"
    )


def _logits(model, tokenizer):
    import torch

    with torch.no_grad():
        return model(**tokenizer(TEXT, return_tensors="pt")).logits.float()


def test_merged_model_gives_the_adapter_models_logits(
    tiny_model_dir: Path, adapter: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = merge_adapter(
        str(tiny_model_dir), adapter, tmp_path / "merged", dtype="float32", card="# card\n"
    )
    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    plain = _logits(base, tok)
    with_adapter = _logits(PeftModel.from_pretrained(base, str(adapter)).eval(), tok)

    assert (
        with_adapter - plain
    ).abs().max() > 0.05  # the adapter changes the model, so the check below can fail
    torch.testing.assert_close(_logits(merged, tok), with_adapter, atol=1e-4, rtol=1e-4)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert result.merge_max_abs_diff < 1e-4 and result.parameters == sum(
        p.numel() for p in merged.parameters()
    )
    record = json.loads((tmp_path / "merged" / PROVENANCE).read_text())
    assert record["dtype"] == "float32" and record["merge_max_abs_logit_diff"] == result.merge_max_abs_diff
    assert (tmp_path / "merged" / "README.md").read_text() == "# card\n"
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template


def test_bfloat16_export_saves_bfloat16_weights(tiny_model_dir: Path, adapter: Path, tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open

    merge_adapter(str(tiny_model_dir), adapter, tmp_path / "bf16")
    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert dtypes == {"BF16"}
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in (tmp_path / "bf16").iterdir())  # readable by others
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16


def test_adapter_of_another_base_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from codetune.models.tiny import make_tiny_model, save_random_adapter

    wider = make_tiny_model(tmp_path / "wider", hidden_size=96, intermediate_size=192)
    other = save_random_adapter(
        AutoModelForCausalLM.from_pretrained(wider), tmp_path / "other", targets=["q_proj"]
    )
    with pytest.raises(CodetuneError, match="does not fit the base model"):
        merge_adapter(str(tiny_model_dir), other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_folder_needs_force_and_is_replaced_whole(
    tiny_model_dir: Path, adapter: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CodetuneError, match="not empty; pass --force"):
        merge_adapter(str(tiny_model_dir), adapter, out)
    assert (out / "keep.txt").read_text() == "mine"
    merge_adapter(str(tiny_model_dir), adapter, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folders left beside it


def test_interrupted_export_leaves_the_old_folder_and_no_partial_one(
    tiny_model_dir: Path, adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    merge_adapter(str(tiny_model_dir), adapter, out, card="first\n")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        export, "atomic_write_json", killed
    )  # after the weights are written, before the rename
    with pytest.raises(KeyboardInterrupt):
        merge_adapter(str(tiny_model_dir), adapter, out, card="second\n", force=True)
    assert (out / "README.md").read_text() == "first\n" and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_bad_dtype_and_missing_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CodetuneError, match="dtype: 'int8'"):
        merge_adapter(str(tiny_model_dir), tmp_path, tmp_path / "o", dtype="int8")
    with pytest.raises(CodetuneError, match="adapter_config.json is missing"):
        merge_adapter(str(tiny_model_dir), tmp_path, tmp_path / "o")
