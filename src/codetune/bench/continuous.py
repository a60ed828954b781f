"""Continuous batching for eager decoding: codetune's generation path on a CPU.

transformers' `generate` decodes fixed batches: every row stays in its batch until the batch's last row ends, so a
batch whose answers end at 300 to 1,000 tokens pays for all its rows at every one of the 1,000 steps, and on a CPU a
step's cost hardly falls with fewer rows (reading the weights dominates). Here at most `batch_size` rows decode
together; a row leaves, with its slice of the KV cache, as soon as it produces an end-of-turn id (or a stop string),
and waiting prompts take the free places: they are prefilled together and their KV cache joins the batch's, both
left-padded to a common length. The maths is `generate`'s: the same positions and attention mask for left-padded
prompts, greedy = argmax, sampling = temperature then top-p (`decode.pick_eager`: other draws, same distribution).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from codetune.bench.decode import _cache_argument, pick_eager, positions

# new ids of each live row -> which rows end their answer there (a stop string, a complete program)
StopText = Callable[[list[list[int]]], list[bool]]
# prompt indices of the rows in a forward pass -> the context to run it in + extra forward kwargs (PEFT's adapter_names)
Route = Callable[[list[int]], tuple[AbstractContextManager[Any], dict[str, Any]]]


def decode_continuous(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    batch_size: int,
    pad_id: int,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    min_new_tokens: int = 0,
    stop_text: StopText | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    route: Route | None = None,
    refill_at: int | None = None,
    on_step: Callable[[int], None] | None = None,
    keys: Sequence[Hashable] | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """Yield (prompt index, new ids) as each row ends: its ids up to its first end-of-turn id, or `max_new_tokens` of
    them. Prompts join in the order given, once `refill_at` places are free (default: a quarter of the batch) or the
    batch is empty. `stop_text` is shown each live row's new ids after every step. `min_new_tokens`:
    end-of-turn ids are ruled out before then, as in `generate`. Sampling draws from torch's global generator.
    `keys`: prompts with equal keys (the same prompt through the same adapter: the samples of one problem) that join
    together are prefilled once and their cache copied."""
    import torch

    device = next(model.parameters()).device
    stops = set(stop_ids)
    refill_at = refill_at or max(1, batch_size // 4)
    pending = deque(range(len(prompts)))
    live: list[int] = []  # prompt index of each row in the batch
    out: dict[int, list[int]] = {}
    batch: _Batch | None = None
    no_stop = None  # the end-of-turn ban of `min_new_tokens`, built once
    while pending or live:
        free = batch_size - len(live)
        if pending and (not live or free >= min(refill_at, len(pending))):
            joining = [pending.popleft() for _ in range(min(free, len(pending)))]
            unique, copy_of = _shared(joining, keys)
            fresh = _prefill(model, [prompts[i] for i in unique], pad_id, device, _routed(route, unique))
            if len(unique) < len(joining):
                fresh.take(torch.tensor(copy_of, device=device))
            batch = fresh if batch is None else batch.join(fresh)
            live += joining
            out |= {i: [] for i in joining}
        assert batch is not None
        scores = batch.logits.float()
        if min_new_tokens:
            under = torch.tensor([len(out[i]) < min_new_tokens for i in live], device=device)
            if bool(under.any()):
                no_stop = _no_stop(stops, scores.shape[-1], device) if no_stop is None else no_stop
                scores[under] = scores[under] + no_stop
        token = pick_eager(scores, temperature, top_p)
        for i, t in zip(live, token.tolist(), strict=True):
            out[i].append(t)
        ended = [out[i][-1] in stops or len(out[i]) >= max_new_tokens for i in live]
        if stop_text is not None:
            ended = [e or h for e, h in zip(ended, stop_text([out[i] for i in live]), strict=True)]
        if on_step is not None:
            on_step(max(len(out[i]) for i in live))
        for i, e in zip(live, ended, strict=True):
            if e:
                yield i, out.pop(i)
        keep = [j for j, e in enumerate(ended) if not e]
        live = [live[j] for j in keep]
        if not live:
            batch = None
            continue
        if len(keep) < len(ended):
            batch.select(torch.tensor(keep, device=device))
        batch.step(model, token[keep] if len(keep) < len(ended) else token, _routed(route, live))


def _routed(route: Route | None, rows: list[int]) -> tuple[AbstractContextManager[Any], dict[str, Any]]:
    return route(rows) if route is not None else (nullcontext(), {})


def _shared(joining: list[int], keys: Sequence[Hashable] | None) -> tuple[list[int], list[int]]:
    """The prompts to prefill (the first of each key) and, for each joining prompt, its row among them."""
    unique: list[int] = []
    row_of: dict[Hashable, int] = {}
    copy_of = []
    for i in joining:
        key = keys[i] if keys is not None else i
        if key not in row_of:
            row_of[key] = len(unique)
            unique.append(i)
        copy_of.append(row_of[key])
    return unique, copy_of


def _no_stop(stops: set[int], vocab: int, device: Any) -> Any:
    import torch

    bias = torch.zeros(vocab, device=device)
    bias[[s for s in stops if 0 <= s < vocab]] = float("-inf")
    return bias


def _prefill(model: Any, prompts: list[Sequence[int]], pad_id: int, device: Any, routed: Any) -> _Batch:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    from codetune.bench.speed import left_pad

    ids, mask = (t.to(device) for t in left_pad([list(p) for p in prompts], pad_id))
    position = positions(mask)
    cache = DynamicCache(config=model.config)
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        growing = _growing_layer_class()
        cache.layers = [growing() for _ in cache.layers]
    scope, extra = routed
    with scope:
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position,
            use_cache=True,
            logits_to_keep=1,
            **{_cache_argument(model): cache},
            **extra,
        ).logits[:, -1]
    return _Batch(cache, mask, position[:, -1], logits)


class _Batch:
    """The rows decoding together: KV cache, attention mask (0 on left padding), each row's last position, and the
    scores of each row's next token."""

    def __init__(self, cache: Any, mask: Any, position: Any, logits: Any) -> None:
        self.cache, self.mask, self.position, self.logits = cache, mask, position, logits

    def join(self, other: _Batch) -> _Batch:
        """`other`'s rows after this batch's, every row left-padded to the longer of the two lengths."""
        import torch
        from torch.nn.functional import pad

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            for name in ("keys", "values"):
                a, b = getattr(mine, name), getattr(theirs, name)
                padded = [pad(t, (0, 0, width - t.shape[-2], 0)) for t in (a, b)]
                setattr(mine, name, torch.cat(padded))
        self.mask = torch.cat([pad(m, (width - m.shape[1], 0)) for m in (self.mask, other.mask)])
        self.position = torch.cat([self.position, other.position])
        self.logits = torch.cat([self.logits, other.logits])
        return self

    def take(self, rows: Any) -> None:
        """Rows `rows` of this batch (an index may repeat), next-token scores included."""
        self.cache.batch_select_indices(rows)
        self.mask, self.position, self.logits = self.mask[rows], self.position[rows], self.logits[rows]

    def select(self, rows: Any) -> None:
        """Keep `rows`, and drop the leading columns that are padding in every one of them: the batch never starts
        afresh, so without this the cache would grow by one column per step for as long as prompts keep joining."""
        self.take(rows)
        first = int(self.mask.any(0).int().argmax())  # the first column some row attends to
        if first:
            for layer in self.cache.layers:
                for name in ("keys", "values"):
                    setattr(layer, name, getattr(layer, name)[..., first:, :])
            self.mask = self.mask[:, first:]

    def step(self, model: Any, token: Any, routed: Any) -> None:
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones(len(token), 1)], dim=-1)
        self.position = self.position + 1
        scope, extra = routed
        with scope:
            self.logits = model(
                input_ids=token[:, None],
                attention_mask=self.mask,
                position_ids=self.position[:, None],
                use_cache=True,
                **{_cache_argument(model): self.cache},
                **extra,
            ).logits[:, -1]


@functools.cache
def _growing_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A `DynamicLayer` whose keys and values are column windows of buffers with room to spare: a decoding step
        writes its column in place. `DynamicLayer` concatenates, copying the whole cache of every layer at every step,
        which at 32 rows x 1,500 tokens of the 1.5B is gigabytes a step. Selecting rows indexes the buffers, room
        included; a window that runs out of room, or a cache replaced by `join`, is copied once into a new buffer."""

        spare = 256  # columns of room: one copy per this many steps

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self.buffers: dict[str, Any] = {}
            self.keys = self._append("keys", key_states)
            self.values = self._append("values", value_states)
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            if self.get_seq_length() == 0:
                return
            for name in ("keys", "values"):
                old, buf = getattr(self, name), self.buffers.get(name)
                start = _window_start(buf, old) if buf is not None else None
                if buf is None or start is None:
                    setattr(self, name, old[indices])
                else:
                    self.buffers[name] = buf = buf[indices]
                    setattr(self, name, buf[..., start : start + old.shape[-2], :])

        def _append(self, name: str, new: Any) -> Any:
            old, buf = getattr(self, name), self.buffers.get(name)
            n, add = (old.shape[-2] if old.numel() else 0), new.shape[-2]
            start = _window_start(buf, old) if n and buf is not None else None
            if buf is None or start is None or start + n + add > buf.shape[-2]:
                buf = new.new_empty(*new.shape[:-2], n + add + self.spare, new.shape[-1])
                if n:
                    buf[..., :n, :] = old
                start = 0
                self.buffers[name] = buf
            buf[..., start + n : start + n + add, :] = new
            return buf[..., start : start + n + add, :]

    return GrowingLayer


def _window_start(buf: Any, t: Any) -> int | None:
    """The first column of `buf` that `t` starts at, when `t` is a window of whole columns of `buf`; else None."""
    if t.shape[:-2] != buf.shape[:-2] or t.stride() != buf.stride():
        return None
    if t.untyped_storage().data_ptr() != buf.untyped_storage().data_ptr():
        return None
    offset = t.storage_offset() - buf.storage_offset()
    return offset // buf.stride(-2) if offset % buf.stride(-2) == 0 else None
