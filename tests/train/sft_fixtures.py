"""Small SFT datasets and the fast training recipe shared by the train tests (and their subprocess scripts)."""

from __future__ import annotations

SYSTEM = "You are an expert Python programmer."


def chat_rows(n: int, start: int = 0, distinct: int = 4) -> list[dict]:
    """Prompt-completion rows; with `distinct` < n the same few examples repeat (easy to fit)."""
    rows = []
    for i in range(start, start + n):
        k = i % distinct
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Print the number {k}."},
                ],
                "completion": [{"role": "assistant", "content": f"print({k})"}],
                "problem_id": f"p{k}",
            }
        )
    return rows


def make_splits(n_train: int = 16, n_eval: int = 4) -> dict:
    from datasets import Dataset

    return {
        "train": Dataset.from_list(chat_rows(n_train)),
        "valid": Dataset.from_list(chat_rows(n_eval, start=100)),
        "test": Dataset.from_list(chat_rows(n_eval, start=200, distinct=3)),
    }


def fast_config(**kw):
    """6 optimizer steps (16 rows, batch 8, 3 epochs), eval + checkpoint every 2 steps."""
    from codetune.train.config import LoraConfig, TrainConfig

    base = dict(
        epochs=3,
        micro_batch_size=4,
        effective_batch_size=8,
        learning_rate=2e-2,
        warmup_ratio=0,
        weight_decay=0,
        max_length=64,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        lora=LoraConfig(r=8, alpha=16, dropout=0.0),
    )
    base.update(kw)
    return TrainConfig(**base)
