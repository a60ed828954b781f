"""Base models: one loader for hub ids, local folders, GGUF files and the offline catalog."""

from codetune.models.load import load_model, load_tokenizer
from codetune.models.source import ModelSource, resolve

__all__ = ["ModelSource", "load_model", "load_tokenizer", "resolve"]
