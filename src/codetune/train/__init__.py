"""LoRA supervised fine-tuning on TRL, with validation and test loss streamed to the run folder."""

from __future__ import annotations

from typing import Any

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing codetune.train.config does not pull in torch.
    if name in __all__:
        from codetune.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
