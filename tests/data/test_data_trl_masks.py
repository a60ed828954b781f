"""The formatted rows through TRL's SFTTrainer and the real Qwen chat template: which tokens carry loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetune.data import build_splits
from codetune.data.config import DataConfig


def sft_dataset(model_dir: Path, tokenizer, train_rows, tmp_path: Path):
    """The training dataset exactly as SFTTrainer prepares it (tokenized, with labels), and a collated batch."""
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"), report_to="none", max_length=4096, use_cpu=True, max_steps=1
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_rows, processing_class=tokenizer)
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    return ds, batch


def test_chat_loss_mask_covers_exactly_the_assistant_answer(
    tiny_model_dir: Path, qwen_tokenizer, tmp_path: Path
):
    built = build_splits(DataConfig(dataset="builtin:deep", max_rows=4), qwen_tokenizer)
    rows = built.datasets["train"]
    ds, batch = sft_dataset(tiny_model_dir, qwen_tokenizer, rows, tmp_path)
    assert len(ds) == 4
    for i, ex in enumerate(ds):
        answer = rows[i]["completion"][0]["content"]
        trained = [t for t, label in zip(ex["input_ids"], ex["labels"], strict=True) if label != -100]
        # TRL trains on the completion as the template renders it: the answer, <|im_end|> and the newline after it.
        assert qwen_tokenizer.decode(trained) == answer + "<|im_end|>\n"
        full = qwen_tokenizer.decode(ex["input_ids"])
        assert full.startswith("<|im_start|>system\n" + rows[i]["prompt"][0]["content"])
        assert rows[i]["prompt"][1]["content"] in full
        collated = batch["labels"][i][batch["attention_mask"][i] == 1]
        assert collated.tolist() == ex["labels"]
    assert (batch["labels"] != -100).sum() < batch["attention_mask"].sum() / 2


def test_study_format_puts_loss_on_every_token(tiny_model_dir: Path, qwen_tokenizer, tmp_path: Path):
    built = build_splits(DataConfig(dataset="builtin:deep", format="study", max_rows=3), qwen_tokenizer)
    rows = built.datasets["train"]
    ds, batch = sft_dataset(tiny_model_dir, qwen_tokenizer, rows, tmp_path)
    for i, ex in enumerate(ds):
        assert ex["labels"] == ex["input_ids"]
        text = qwen_tokenizer.decode(ex["input_ids"])
        assert text == rows[i]["text"] and text.endswith("<|im_end|>") and text.count("<|im_end|>") == 1
        keep = batch["attention_mask"][i] == 1
        assert batch["labels"][i][keep].tolist() == batch["input_ids"][i][keep].tolist()


@pytest.mark.parametrize("fmt", ["chat", "study"])
def test_token_lengths_match_what_trl_tokenizes(
    fmt: str, tiny_model_dir: Path, qwen_tokenizer, tmp_path: Path
):
    from codetune.data.format import token_lengths

    built = build_splits(DataConfig(dataset="builtin:diverse", format=fmt, max_rows=3), qwen_tokenizer)
    rows = built.datasets["train"]
    ds, _ = sft_dataset(tiny_model_dir, qwen_tokenizer, rows, tmp_path)
    assert token_lengths(rows.to_list(), qwen_tokenizer) == [len(ex["input_ids"]) for ex in ds]
