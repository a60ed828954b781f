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


def make_splits(n_train: int = 8, n_eval: int = 4) -> dict:
    from datasets import Dataset

    return {
        "train": Dataset.from_list(chat_rows(n_train)),
        "valid": Dataset.from_list(chat_rows(n_eval, start=100)),
        "test": Dataset.from_list(chat_rows(n_eval, start=200, distinct=3)),
    }


def fast_config(**kw):
    """4 optimizer steps (8 rows, batch 4, 2 epochs), eval + checkpoint every 2 steps."""
    from codetune.train.config import LoraConfig, TrainConfig

    base = dict(
        epochs=2,
        micro_batch_size=4,
        effective_batch_size=4,
        learning_rate=5e-3,
        warmup_ratio=0,
        weight_decay=0,
        max_length=64,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        early_stopping_patience=5,  # wired in, never triggered in 2 evaluations
        lora=LoraConfig(r=8, alpha=16, dropout=0.0),
    )
    base.update(kw)
    return TrainConfig(**base)
