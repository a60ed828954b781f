"""Eager decoding that drops finished rows: codetune's generation path on a CPU.

transformers' `generate` keeps every row of a batch in each step until the last row ends, so a batch whose answers
end at 300 to 1,000 tokens pays for all its rows at every one of the 1,000 steps. Here a row leaves the batch, and its
slice of the KV cache, as soon as it produces an end-of-turn id (or a stop string), so a batch costs about the sum of
its rows' lengths. The maths is `generate`'s: the same positions and attention mask for left-padded prompts, greedy =
argmax, sampling = temperature then top-p (`decode.pick`, other draws from the same distribution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from codetune.bench.decode import _cache_argument, pick

StopTail = Callable[
    [list[list[int]]], list[bool]
]  # last new ids of each live row -> which rows hit a stop string


def decode_shrinking(
    model: Any,
    ids: Any,
    mask: Any,
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    min_new_tokens: int = 0,
    stop_tail: StopTail | None = None,
    tail: int = 16,
    temperature: float = 0.0,
    top_p: float = 1.0,
    adapter_names: Sequence[str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """New ids of each row of `ids` (left-padded, `mask` 1 on prompt tokens), each ending with its first end-of-turn
    id unless `max_new_tokens` came first. `stop_tail` is shown each live row's last `tail` new ids after every
    step. `adapter_names`: PEFT's per-row adapter (mixed-adapter batches), kept in step with the live rows.
    `min_new_tokens`: end-of-turn ids are ruled out before then, as in `generate`. Sampling draws from torch's
    global generator."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device).long()
    cache = DynamicCache(config=model.config)
    kv = {_cache_argument(model): cache}
    names = list(adapter_names) if adapter_names is not None else None
    extra = {"adapter_names": names} if names is not None else {}
    position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # as `generate` numbers them
    logits = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position,
        use_cache=True,
        logits_to_keep=1,
        **kv,
        **extra,
    ).logits[:, -1]
    stops = set(stop_ids)
    no_stop = torch.zeros(logits.shape[-1], device=device)
    no_stop[[s for s in stops if 0 <= s < len(no_stop)]] = float("-inf")

    out: list[list[int]] = [[] for _ in range(ids.shape[0])]
    live = list(range(ids.shape[0]))  # the original row of each row still in the batch
    position = position[:, -1]
    for made in range(max_new_tokens):
        scores = logits.float() + no_stop if made < min_new_tokens else logits.float()
        token = pick(scores, temperature, top_p)
        for row, t in zip(live, token.tolist(), strict=True):
            out[row].append(t)
        ended = [out[row][-1] in stops for row in live]
        if stop_tail is not None:
            hits = stop_tail([out[row][-tail:] for row in live])
            ended = [e or h for e, h in zip(ended, hits, strict=True)]
        if on_step is not None:
            on_step(made + 1)
        if all(ended) or made + 1 == max_new_tokens:
            break
        if any(ended):
            keep = [j for j, e in enumerate(ended) if not e]
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            live = [live[j] for j in keep]
            token, mask, position = token[index], mask[index], position[index]
            if names is not None:
                names = [names[j] for j in keep]
                extra = {"adapter_names": names}
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=-1)
        position = position + 1
        logits = model(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=position[:, None],
            use_cache=True,
            **kv,
            **extra,
        ).logits[:, -1]
    return out
