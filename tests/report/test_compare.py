"""`codetune compare`: base and adapter answers to the same prompts, side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codetune.errors import CodetuneError
from codetune.report.compare import adapter_labels, load_prompts

MAX_NEW = 6


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh LoRA adapter with random (non-zero) B matrices, so it changes the model's output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    cfg = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    peft = get_peft_model(model, cfg)
    out = tmp_path_factory.mktemp("adapters") / "deep" / "adapter"
    peft.save_pretrained(out)
    return out


def greedy(model, tok, text: str, count: bool = False):
    """The greedy answer, or with `count` whether it used all MAX_NEW tokens without ending."""
    import torch

    chat = tok.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    enc = tok(chat, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(**enc, do_sample=False, max_new_tokens=MAX_NEW, pad_token_id=tok.pad_token_id,
                             eos_token_id=[tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")])  # fmt: skip
    new = ids[0, enc["input_ids"].shape[1] :]
    if count:
        stops = {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        return len(new) == MAX_NEW and int(new[-1]) not in stops
    return tok.decode(new, skip_special_tokens=True).strip()


def test_default_prompts_include_the_study_pair() -> None:
    texts = [p.text for p in load_prompts().prompts]
    assert "Explain binary search step by step before writing the code." in texts
    assert "Compute the distance between two points in three different ways." in texts
    assert len(texts) >= 4


def test_prompt_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("prompts:\n  - id: a\n    txt: hello\n")
    with pytest.raises(CodetuneError, match=r"p.yaml: prompts.0"):
        load_prompts(bad)
    bad.write_text("prompts: [one, {id: prompt-1, text: two}]\n")
    with pytest.raises(CodetuneError, match="duplicate id 'prompt-1'"):
        load_prompts(bad)
    with pytest.raises(CodetuneError, match="one per --adapter"):
        adapter_labels([Path("a"), Path("b")], ["x"])
    assert adapter_labels([Path("runs/deep/adapter"), Path("runs/div/checkpoint-40")], None) == [
        "deep",
        "div/checkpoint-40",
    ]


def test_compare_tiny_model(tiny_model_dir: Path, tiny_adapter: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    from codetune.models import load_model

    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(
        "prompts:\n  - Explain binary search step by step.\n  - id: dist\n    text: 'Distance <b>3 ways</b> $x$'\n"
    )
    out = tmp_path / "cmp"
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "compare", "--prompts", str(prompts), "--model", str(tiny_model_dir),
         "--adapter", str(tiny_adapter), "--label", "deep & <co>", "--max-new-tokens", str(MAX_NEW), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "compare.json").read_text())
    got = {p["id"]: p["answers"] for p in result["prompts"]}
    assert list(got) == ["prompt-1", "dist"] and all(list(a) == ["base", "deep & <co>"] for a in got.values())

    # The answers are what plain greedy decoding gives for the base model and for the base + this adapter.
    model, tok = load_model(str(tiny_model_dir), device="cpu")
    texts = {"prompt-1": "Explain binary search step by step.", "dist": "Distance <b>3 ways</b> $x$"}
    base = {k: greedy(model, tok, t) for k, t in texts.items()}
    tuned = PeftModel.from_pretrained(model, str(tiny_adapter)).eval()
    adapted = {k: greedy(tuned, tok, t) for k, t in texts.items()}
    assert {k: a["base"] for k, a in got.items()} == base
    assert {k: a["deep & <co>"] for k, a in got.items()} == adapted
    assert base != adapted

    for pid in ("prompt-1", "dist"):
        png = (out / f"compare_{pid}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    html = (out / "compare.html").read_text()
    assert (
        "deep &amp; &lt;co&gt;" in html
        and "Distance &lt;b&gt;3 ways&lt;/b&gt;" in html
        and "<b>3" not in html
    )
    assert 'src="data:image/png;base64,' in html
    md = (out / "compare.md").read_text()
    assert "## dist" in md and "![dist](compare_dist.png)" in md
    # an answer that used every token it was allowed is marked as cut
    for p in result["prompts"]:
        with (
            tuned.disable_adapter()
        ):  # PEFT wrapped `model` in place: the base model is the adapter switched off
            expected = ["base"] * greedy(tuned, tok, texts[p["id"]], count=True)
        expected += ["deep & <co>"] * greedy(tuned, tok, texts[p["id"]], count=True)
        assert p["cut"] == expected
        for label in expected:
            assert f"### {label} (cut at the {MAX_NEW}-token limit)" in md
    assert any(p["cut"] for p in result["prompts"])  # the random tiny model rarely ends an answer


def test_compare_missing_adapter_is_user_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "codetune.cli", "compare", "--model", str(tiny_model_dir), "--adapter", str(tmp_path),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "adapter_config.json not found" in r.stderr and "Traceback" not in r.stderr
