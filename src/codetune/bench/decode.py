"""A decoding loop that lets the host run ahead of the GPU: the compiled (CUDA) path (1.35x `generate` on an H200).

transformers' `generate` (5.x on CUDA) reads `unfinished_sequences.max()` on the host after every token, so the host
waits for each step to finish before it prepares the next: a step costs the GPU's time plus the host's (building the
mask and positions, the compiled call's guard checks, logits processing) instead of the larger of the two. Here one
compiled step per token holds the attention mask, the forward pass and the token choice (one CUDA graph replay), the
finished flags stay on the device and the host reads them every `check_every` tokens, and after a batch's first step
the compiled step skips the guard checks that cannot change within the batch (on a 2-core CPU, 28 layers: 2.15 ms a
step of guard checks before, 0.42 after). Rows that finish early keep decoding until the next check; callers cut
every row after its first end-of-turn id, so greedy output equals `generate`'s (sampled output follows the same
distribution, with other draws).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

# the new ids so far of the rows not done -> which of them end there
StopText = Callable[[list[list[int]]], list[bool]]


def pick(scores: Any, temperature: float, top_p: float) -> Any:
    """The next token of each row from its scores: the largest when `temperature` is 0, else drawn from
    softmax(scores / temperature) cut to the smallest set of tokens holding `top_p` of the probability (transformers'
    temperature and top-p processors), as argmax(p / E) with E ~ Exp(1), which compiles into the step's graph."""
    import torch

    if temperature == 0:
        return scores.argmax(-1)
    scores = scores / temperature
    if top_p < 1:
        ascending, order = torch.sort(scores, dim=-1)
        cut = ascending.softmax(-1).cumsum(-1) <= 1 - top_p
        cut[..., -1] = False  # the most likely token always stays
        scores = scores.masked_fill(cut.scatter(-1, order, cut), float("-inf"))
    exponential = -torch.log(torch.rand_like(scores))
    return (scores.softmax(-1) / exponential).argmax(-1)


NUCLEUS_K = 64


def pick_eager(scores: Any, temperature: float, top_p: float, k: int = NUCLEUS_K) -> Any:
    """`pick` for eager decoding, where sorting the whole vocabulary for every row is a sizeable share of a sampled
    step on a CPU. When every row's `k` most likely tokens hold at least `top_p` of its probability (nearly always at
    the low temperatures code is sampled at), the nucleus lies among them: only they are ranked and drawn from. Else
    `pick`. The same nucleus and distribution as `pick`; a different random stream."""
    import torch

    if temperature == 0 or top_p >= 1 or scores.shape[-1] <= k:
        return pick(scores, temperature, top_p)
    scaled = scores / temperature
    top, index = scaled.topk(k, dim=-1)
    probs = (top - scaled.logsumexp(-1, keepdim=True)).exp()
    if not bool((probs.sum(-1) >= top_p).all()):
        return pick(scores, temperature, top_p)
    # a token stays while the tokens ranked above it hold less than top_p
    kept = probs.cumsum(-1) - probs < top_p
    weights = probs.masked_fill(~kept, 0)
    choice = (weights / -torch.log(torch.rand_like(weights))).argmax(-1)
    return index.gather(-1, choice[:, None]).squeeze(-1)


def _step(
    model: Any,
    token: Any,
    position: Any,
    slot: Any,
    valid: Any,
    bias: Any,
    cache: dict[str, Any],
    temperature: float,
    top_p: float,
) -> Any:
    """One token for every row: the mask lets each row see its own prompt (not its left padding) and the slots
    written so far."""
    import torch

    seen = valid & (torch.arange(valid.shape[1], device=valid.device) <= slot)
    logits = model(
        input_ids=token[:, None],
        attention_mask=seen[:, None, None, :],
        position_ids=position[:, None],
        cache_position=slot,
        use_cache=True,
        logits_to_keep=1,
        **cache,
    ).logits
    return pick(logits[:, -1].float() + bias, temperature, top_p)


class DecodeLoop:
    """Greedy or sampled decoding over left-padded batches with a static KV cache (one per batch shape, reused: a compiled step
    keeps serving it)."""

    def __init__(self, *, compile: bool, check_every: int = 32, skip_guards: bool = True) -> None:
        import torch

        self.check_every = check_every
        self._caches: dict[tuple[int, int], Any] = {}
        # like transformers' compiled generation: static shapes, CUDA graphs, graph breaks allowed
        self._step = torch.compile(_step, mode="reduce-overhead", dynamic=False) if compile else _step
        # Within a batch every step after the first sees the same model, adapter and shapes, so the compiled step's
        # guards (one check per parameter, ~2 ms a step for 28 layers on a slow CPU) need not run again: only the
        # guards that tell its compiled versions apart (base model or adapter slot) still do.
        stance = torch.compiler.set_stance
        self.skip_guards = (
            compile and skip_guards and "skip_guard_eval_unsafe" in inspect.signature(stance).parameters
        )

    def generate(
        self,
        model: Any,
        ids: Any,
        mask: Any,
        *,
        max_new_tokens: int,
        stop_ids: Sequence[int],
        min_new_tokens: int = 0,
        stop_text: StopText | None = None,
        cache_len: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        on_step: Callable[[int], None] | None = None,
    ) -> list[list[int]]:
        """New ids of each row of `ids` (left-padded, `mask` 1 on prompt tokens). Rows run on past their end-of-turn
        id until every row has one (or a stop string, when `stop_text` says so) or `max_new_tokens` are made.
        `min_new_tokens`: end-of-turn ids are ruled out before then, as in `generate`. `cache_len` (default: prompt
        width + max_new_tokens) fixes the KV cache's length, so batches of other widths share one compiled step.
        `temperature` 0 is greedy; above 0, tokens are sampled (see `pick`) from torch's global generator.
        `on_step(new tokens so far)` runs at every check, for progress."""
        import torch

        device = next(model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        rows, width = ids.shape
        length = cache_len or width + max_new_tokens
        cache = {_cache_argument(model): self._cache(model, rows, length)}
        position = positions(mask)
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position,
            cache_position=torch.arange(width, device=device),
            use_cache=True,
            logits_to_keep=1,
            **cache,
        ).logits[:, -1]
        stops = torch.tensor(list(stop_ids) or [-1], device=device)
        free = torch.zeros(logits.shape[-1], device=device)
        no_stop = free.clone()
        no_stop[stops[(stops >= 0) & (stops < len(free))]] = float("-inf")

        token = pick(logits.float() + (no_stop if min_new_tokens > 0 else free), temperature, top_p)
        out = torch.empty(rows, max_new_tokens, dtype=torch.long, device=device)
        out[:, 0] = token
        done = (token[:, None] == stops).any(-1)
        valid = torch.ones(rows, length, dtype=torch.bool, device=device)
        valid[:, :width] = mask.bool()
        position, slot = position[:, -1] + 1, torch.tensor([width], device=device)
        made = 1
        with ExitStack() as steady:
            while made < max_new_tokens:
                if made % self.check_every == 0:
                    if on_step is not None:
                        on_step(made)
                    if _finished(done, out[:, :made], stop_text):
                        break
                if device.type == "cuda":
                    torch.compiler.cudagraph_mark_step_begin()
                bias = no_stop if made < min_new_tokens else free
                token = self._step(
                    model, token, position, slot, valid, bias, cache, temperature, top_p
                ).clone()
                out[:, made] = token
                done |= (token[:, None] == stops).any(-1)  # no host sync, unlike isin's sort path
                position += 1
                slot += 1
                made += 1
                if made == 2 and self.skip_guards:  # the first step ran with every guard
                    steady.enter_context(torch.compiler.set_stance(skip_guard_eval_unsafe=True))
        return out[:, :made].tolist()

    def _cache(self, model: Any, rows: int, length: int) -> Any:
        from transformers import StaticCache

        if (rows, length) in self._caches:
            self._caches[rows, length].reset()
        else:
            self._caches[rows, length] = StaticCache(config=model.config, max_cache_len=length)
        return self._caches[rows, length]


def positions(mask: Any) -> Any:
    """Position ids of left-padded rows, numbered as `generate` numbers them (padding gets 1; it is masked anyway)."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)


def _cache_argument(model: Any) -> str:
    """The forward argument that takes the KV cache: `cache` since transformers 5.2x, `past_key_values` before."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _finished(done: Any, new: Any, stop_text: StopText | None) -> bool:
    """Whether every row is done (the host waits for the device here); rows not done yet are shown to `stop_text`,
    and those it says end there are marked."""
    if not bool(done.all()) and stop_text is not None:
        live = (~done).nonzero().flatten().tolist()
        ended = [i for i, hit in zip(live, stop_text(new[live].tolist()), strict=True) if hit]
        if ended:
            done[ended] = True
    return bool(done.all())
