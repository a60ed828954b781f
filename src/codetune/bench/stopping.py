"""When a generated answer ends: end-of-turn ids, stop strings, and (with `stop_at_program`) a complete program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codetune.bench.extract import FENCE, program_end
from codetune.bench.generate import Decoding


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-turn ids: the model's generation eos, the tokenizer's eos and `<|im_end|>` when the vocabulary has it."""
    ids: list[int] = []
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for x in [*(gen_eos if isinstance(gen_eos, list) else [gen_eos]), tokenizer.eos_token_id]:
        if isinstance(x, int) and x not in ids:
            ids.append(x)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id and im_end not in ids:
        ids.append(im_end)
    return ids


class StopCheck:
    """Which rows of generated ids end their answer (`Decoding.stopped`): a stop string, or a complete program.
    It decodes only each row's last ids (those since the previous look, and enough before them to hold a stop string),
    and the whole row only when a fence is among them."""

    def __init__(self, tokenizer: Any, decoding: Decoding) -> None:
        self.tokenizer, self.decoding = tokenizer, decoding
        self.strings = [s for s in decoding.stop if s]
        marks = self.strings + ([FENCE] if decoding.stop_at_program else [])
        self.window = max(map(len, marks), default=0) + 2  # each token decodes to at least one character

    def __bool__(self) -> bool:
        return bool(self.strings) or self.decoding.stop_at_program

    def __call__(self, rows: Any, *, new: int = 1) -> list[bool]:
        """`rows`: each row's generated ids (lists or a tensor), of which the last `new` came since the previous look."""
        width, tensor = new - 1 + self.window, hasattr(rows, "tolist")
        decode = self.tokenizer.batch_decode
        tails = decode(
            rows[:, -width:].tolist() if tensor else [r[-width:] for r in rows], skip_special_tokens=True
        )
        hits = [any(s in t for s in self.strings) for t in tails]
        if self.decoding.stop_at_program:
            fenced = [i for i, t in enumerate(tails) if not hits[i] and FENCE in t]
            whole = [rows[i].tolist() if tensor else rows[i] for i in fenced]
            for i, text in zip(fenced, decode(whole, skip_special_tokens=True), strict=True):
                hits[i] = program_end(text) is not None
        return hits


def stopping_criteria(check: StopCheck, prompt_len: int, on_step: Callable[[int], None] | None = None) -> Any:
    """Stop a row once its *generated* text ends the answer (transformers' `stop_strings` also match across the
    prompt's end, which would stop a continuation that merely repeats the prompt's last characters);
    `on_step(new tokens so far)` after every step, for progress."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.tensor(check(input_ids[:, prompt_len:]), device=input_ids.device)

    class Progress(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            on_step(input_ids.shape[1] - prompt_len)  # type: ignore[misc]
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    criteria = ([StopOnText()] if check else []) + ([Progress()] if on_step else [])
    return StoppingCriteriaList(criteria) if criteria else None


def eos_ids(config: Any) -> list[int]:
    """The end-of-turn ids of a GenerationConfig (an int or a list there)."""
    eos = config.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])
