"""The transformers generation backend: length-sorted, left-padded batches through `generate` (or, compiled on CUDA,
codetune's decoding loop), base model and LoRA adapters in one call."""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from codetune.bench.adapters import adapters_attached, is_dora
from codetune.bench.generate import Decoding, GenStats, Job, OnResult
from codetune.bench.stopping import StopCheck, eos_ids, stop_token_ids, stopping_criteria

WIDTH_MULTIPLE = 64  # compiled generation: prompt widths rounded up to this, so batches share shapes


class HFGenerator:
    """transformers `generate` over length-sorted, left-padded batches."""

    backend = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        *,
        compile: bool | None = None,
        decode_loop: bool = True,
        continuous: bool = True,
    ) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.compile = compile  # None: on CUDA only
        # eager: continuous batching (bench/continuous.py) instead of `generate` on fixed batches
        self.continuous = continuous
        # compiled batches: codetune's decoding loop (bench/decode.py) instead of `generate` (faster on a GPU)
        self.decode_loop = decode_loop
        self._loop: Any = None
        # while `run` shows progress: told the batch's new tokens so far
        self._on_step: Callable[[int], None] | None = None
        self._eager = False  # set when compiling failed once
        self.compile_error: str | None = None

    def generate(
        self, prompts: Sequence[str], decoding: Decoding, *, adapter: Path | None = None
    ) -> list[list[str]]:
        """Convenience: `decoding.n` outputs per prompt, in prompt order."""
        out: list[list[str]] = [[""] * decoding.n for _ in prompts]
        jobs = [Job(str(i), p, tuple(range(decoding.n)), adapter) for i, p in enumerate(prompts)]

        def keep(key: str, sample: int, text: str, _cut: bool) -> None:
            out[int(key)][sample] = text

        self.run(jobs, decoding, on_result=keep, progress=False)
        return out

    def run(
        self,
        jobs: Sequence[Job],
        decoding: Decoding,
        *,
        on_result: OnResult,
        progress: bool = True,
    ) -> GenStats:
        tok = self.tokenizer
        # Greedy samples are identical: one row per prompt fills all its samples. Sampling: one row per sample.
        if decoding.greedy:
            rows = [(j, j.samples) for j in jobs]
        else:
            rows = [(j, (s,)) for j in jobs for s in j.samples]
        prompt_ids = {id(j): tok(j.prompt, add_special_tokens=False)["input_ids"] for j in jobs}
        ends = {*stop_token_ids(self.model, tok), tok.pad_token_id}  # what decoding stops at (`_batches`)
        stats = GenStats()
        with _progress(progress, len(rows)) as bar:
            if bar is not None:
                limit = decoding.max_new_tokens
                self._on_step = lambda n: bar[0].update(bar[1], step=f"batch at {n}/{limit} tokens")
            try:
                for idx, new, seconds in self._batches(
                    [(prompt_ids[id(j)], j.adapter) for j, _ in rows], decoding
                ):
                    stats.seconds += seconds
                    for i, ids in zip(idx, new, strict=True):
                        job, samples = rows[i]
                        stats.new_tokens += len(ids)
                        full = tok.decode(ids, skip_special_tokens=True)
                        text = decoding.finish(full)
                        cut = len(ids) >= decoding.max_new_tokens and ids[-1] not in ends
                        cut = cut and not decoding.stopped(full)
                        for s in samples:
                            on_result(job.key, s, text, cut)
                    stats.sequences += len(idx)
                    if bar is not None:
                        bar[0].update(bar[1], advance=len(idx), tps=f"{stats.tokens_per_s:.1f} tok/s")
            finally:
                self._on_step = None
        return stats

    def generate_ids(
        self,
        prompts: Sequence[list[int]],
        decoding: Decoding,
        *,
        adapters: Sequence[str | Path | None] | None = None,
        **overrides: Any,
    ) -> list[list[int]]:
        """New token ids for token-id prompts, in prompt order, each row cut after its first end-of-turn id.
        `adapters`: one adapter folder (or None = base model) per prompt; `overrides` set GenerationConfig fields."""
        adapters = adapters or [None] * len(prompts)
        out: list[list[int]] = [[] for _ in prompts]
        for idx, new, _ in self._batches(list(zip(prompts, adapters, strict=True)), decoding, overrides):
            for i, ids in zip(idx, new, strict=True):
                out[i] = ids
        return out

    def _batches(
        self,
        rows: list[tuple[Sequence[int], str | Path | None]],
        decoding: Decoding,
        overrides: dict[str, Any] | None = None,
    ) -> Iterator[tuple[list[int], list[list[int]], float]]:
        """Generate for (prompt ids, adapter) rows batch by batch; yield (row indices, new ids cut after the first
        end-of-turn id, seconds the batch took). Rows are grouped by adapter, longest prompt first within a group (an
        out-of-memory shows up at once). Eager: continuous batching (`bench/continuous.py`), rows of every adapter
        together (one adapter at a time when a DoRA adapter is among them), each row yielded as it ends; with
        `continuous=False`, `generate` on batches filled across group boundaries (not with DoRA). Compiled: every
        batch holds one adapter's rows and has the same size and KV cache length (short batches are filled with
        copies of their last row), so one compiled graph serves them all."""
        import torch

        folders = [_path(a) for _, a in rows]
        adapters = list(dict.fromkeys(a for a in folders if a is not None))
        group = {None: -1} | {a: i for i, a in enumerate(adapters)}
        order = sorted(range(len(rows)), key=lambda i: (group[folders[i]], -len(rows[i][0])))
        fixed = bool(self._fast_kwargs())
        if fixed:
            from codetune.bench.speed import use_grouped_decode_attention

            use_grouped_decode_attention(self.model)
        mixed = not fixed and not any(is_dora(a) for a in adapters)  # PEFT cannot route DoRA per row
        batches = _batch_plan(order, [group[f] for f in folders], self.batch_size, mixed=mixed)
        fill = max(map(len, batches), default=0) if fixed else 0
        with adapters_attached(self.model, adapters, mixed=not fixed) as (model, route):
            gen_config = self._generation_config(model, decoding)
            for key, value in (overrides or {}).items():
                setattr(gen_config, key, value)
            if not fixed and self.continuous and gen_config.cache_implementation is None:
                runs = (
                    [order] if mixed else [[i for i in order if folders[i] == a] for a in [None, *adapters]]
                )
                for part in filter(None, runs):
                    yield from self._continuous(model, rows, part, gen_config, decoding, route)
                return
            if fixed and rows:
                width = math.ceil(max(len(p) for p, _ in rows) / WIDTH_MULTIPLE) * WIDTH_MULTIPLE
                gen_config.max_cache_len = width + gen_config.max_new_tokens
            stop_ids = {*eos_ids(gen_config), gen_config.pad_token_id}
            for b, idx in enumerate(batches):
                if not decoding.greedy:
                    torch.manual_seed(decoding.seed + b * self.batch_size)
                t0 = time.perf_counter()
                new = self._generate_batch(
                    model,
                    [list(rows[i][0]) for i in idx],
                    gen_config,
                    decoding,
                    functools.partial(route, [folders[i] for i in idx]),
                    fill,
                )
                yield idx, [_until_stop(ids, stop_ids) for ids in new], time.perf_counter() - t0

    def _fast_kwargs(self) -> dict[str, Any]:
        from codetune.bench.speed import fast_generate_kwargs

        return {} if self._eager else fast_generate_kwargs(self.model, compile=self.compile)

    def _generate_batch(
        self,
        model: Any,
        prompts: list[list[int]],
        gen_config: Any,
        decoding: Decoding,
        route: Callable[[], tuple[AbstractContextManager[Any], dict[str, Any]]],
        fill: int,
    ) -> list[list[int]]:
        """New token ids of each row. On CUDA: static KV cache + torch.compile (bench/speed.py), the batch filled
        to `fill` rows and widths rounded to 64; if compiling fails, this run goes on without it."""
        import torch

        from codetune.bench.cpu_linear import onednn_linears
        from codetune.bench.speed import left_pad

        fast = self._fast_kwargs()
        rows = prompts + [prompts[-1]] * (fill - len(prompts)) if fast else prompts
        ids, mask = left_pad(rows, gen_config.pad_token_id, WIDTH_MULTIPLE if fast else 1)
        device = next(model.parameters()).device
        config = copy.copy(gen_config)
        for key, value in fast.items():
            setattr(config, key, value)
        scope, extra = route()
        try:
            # compiled graphs pick their own kernels; eager decoding on a CPU takes oneDNN's for its few rows
            with scope, torch.inference_mode(), nullcontext() if fast else onednn_linears(model):
                if fast and self.decode_loop and not extra:
                    compiled = "compile_config" in fast
                    return self._decode_loop(model, ids, mask, config, decoding, compiled)[: len(prompts)]
                out = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    generation_config=config,
                    stopping_criteria=stopping_criteria(
                        StopCheck(self.tokenizer, decoding), ids.shape[1], self._on_step
                    ),
                    **extra,
                )
        except Exception as e:
            if not fast or isinstance(e, torch.OutOfMemoryError):
                raise
            self._eager = True
            self.compile_error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
            print(
                f"warning: compiled generation failed ({self.compile_error}); continuing without torch.compile"
            )
            return self._generate_batch(model, prompts, gen_config, decoding, route, fill)
        return out[: len(prompts), ids.shape[1] :].tolist()

    def _decode_loop(
        self, model: Any, ids: Any, mask: Any, config: Any, decoding: Decoding, compiled: bool
    ) -> list[list[int]]:
        from codetune.bench.decode import DecodeLoop

        self._loop = self._loop or DecodeLoop(compile=compiled)
        check, every = StopCheck(self.tokenizer, decoding), self._loop.check_every

        def stop_text(rows: list[list[int]]) -> list[bool]:
            return check(rows, new=every)  # the ids made since the loop's last look are new

        return self._loop.generate(
            model,
            ids,
            mask,
            max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens or 0,
            stop_ids=eos_ids(config),
            stop_text=stop_text if check else None,
            cache_len=getattr(config, "max_cache_len", None),
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            on_step=self._on_step,
        )

    def _continuous(
        self,
        model: Any,
        rows: list[tuple[Sequence[int], str | Path | None]],
        order: list[int],
        config: Any,
        decoding: Decoding,
        route: Any,
    ) -> Iterator[tuple[list[int], list[list[int]], float]]:
        """`_batches` for eager decoding: rows in `order`, continuously batched; each yielded as it ends (already cut
        after its first end-of-turn id)."""
        import torch

        from codetune.bench.continuous import decode_continuous
        from codetune.bench.cpu_linear import onednn_linears

        check = StopCheck(self.tokenizer, decoding)
        folders = [_path(rows[i][1]) for i in order]
        if not decoding.greedy:
            torch.manual_seed(decoding.seed)
        decoded = decode_continuous(
            model,
            [rows[i][0] for i in order],
            batch_size=self.batch_size,
            pad_id=config.pad_token_id,
            max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens or 0,
            stop_ids=eos_ids(config),
            stop_text=check if check else None,
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            route=lambda live: route([folders[j] for j in live]),
            on_step=self._on_step,
            keys=[(folders[j], tuple(rows[i][0])) for j, i in enumerate(order)],
        )
        t0 = time.perf_counter()
        with torch.inference_mode(), onednn_linears(model):
            for j, ids in decoded:
                yield [order[j]], [ids], time.perf_counter() - t0
                t0 = time.perf_counter()  # the caller's time (writing the row) is not generation time

    def _generation_config(self, model: Any, decoding: Decoding) -> Any:
        from transformers import GenerationConfig

        # A fresh config: the checkpoint's own defaults (repetition penalty, top_k...) must not leak into the benchmark.
        kw: dict[str, Any] = {"do_sample": False}
        if not decoding.greedy:
            kw = {"do_sample": True, "temperature": decoding.temperature, "top_p": decoding.top_p, "top_k": 0}
        pad = self.tokenizer.pad_token_id
        return GenerationConfig(
            max_new_tokens=decoding.max_new_tokens,
            eos_token_id=stop_token_ids(model, self.tokenizer),
            pad_token_id=pad if pad is not None else self.tokenizer.eos_token_id,
            **kw,
        )


def _batch_plan(order: list[int], group: list[int], size: int, *, mixed: bool) -> list[list[int]]:
    """Row indices per batch, `order` cut into batches of `size`; unless `mixed`, a batch never spans two groups."""
    if mixed:
        return [order[b : b + size] for b in range(0, len(order), size)]
    batches: list[list[int]] = []
    for i in order:
        if not batches or len(batches[-1]) == size or group[batches[-1][0]] != group[i]:
            batches.append([])
        batches[-1].append(i)
    return batches


def _path(adapter: str | Path | None) -> Path | None:
    return None if adapter is None else Path(adapter)


def _until_stop(ids: list[int], stop_ids: set[int]) -> list[int]:
    """Generated ids up to and including the first end-of-turn id (later positions are padding)."""
    for i, t in enumerate(ids):
        if t in stop_ids:
            return ids[: i + 1]
    return ids


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[tuple[Any, Any] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[tps]}"),
        TextColumn("{task.fields[step]}"),
    )
    with Progress(*columns, transient=False) as p:
        yield p, p.add_task("generate", total=total, tps="", step="")
