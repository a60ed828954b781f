"""Greedy generation throughput on the 41-problem workload: plain HF generate vs codetune's fast path.

Prompts are random token ids with the token lengths of the benchmark's problems (LCB prompt template + Qwen chat
template): the LiveCodeBench file in ../shared when present, else benchmarks/lcb41_prompt_lengths.json, else the
shipped quickstart problems repeated to 41. Every prompt gets exactly --max-new-tokens (min_new_tokens = max, EOS
ignored), so the work is fixed.
(a) study: one problem at a time, dynamic cache (timed on the first --serial-problems problems, --serial-new-tokens
    each: per-token cost at batch 1 is launch-bound and nearly constant, so tokens/s carries over);
(b) plain HF generate, all 41 in one left-padded batch, dynamic cache;
(c) codetune: `HFGenerator.generate_ids`, the generator `codetune eval` and `codetune run` use (static cache +
    torch.compile with CUDA graphs on CUDA, widths rounded to 64, batches by length); timed on its second run, the
    first (compile) run reported as warmup_seconds.
(d) codetune evaluating 3 models in one pass, as `codetune run` does: every prompt for the base model and for two
    random LoRA adapters (r=16 on all 7 projections), rows grouped by adapter, PEFT mixed batches where groups meet.
(f) (c) with transformers' SDPA at decoding steps (it copies each KV head once per query head of its group), as (c)
    ran until session 5; (c) now folds the grouped query heads instead (`codetune.bench.speed.grouped_decode_sdpa`).
(e) transformers' continuous batching (`model.generate_batch`: paged KV cache, CUDA graphs), the library's own
    throughput path, as a candidate backend.
(g) (c) with codetune's decoding loop (`codetune.bench.decode`) in place of `generate`: one compiled step per token
    (mask, forward and argmax in one CUDA graph), finished rows read on the host every 32 tokens instead of every
    token, so the host queues steps ahead of the GPU. (h) is (d) with the same loop.
Prints JSON with new tokens/s for each and the ratios c/a, c/b, d/c, e/b, c/e, c/f, g/b, g/c, h/d, h/g; --profile
adds, for (c) and (g), wall vs GPU-busy ms per decoding step and the top kernels and host ops.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from codetune.files import atomic_write_json  # noqa: E402

LCB = ROOT.parent / "shared" / "data" / "lcb" / "atcoder_easy_2408_2502.jsonl"
LENGTHS_FILE = ROOT / "benchmarks" / "lcb41_prompt_lengths.json"
QUICKSTART = ROOT / "src" / "codetune" / "bench" / "builtin" / "quickstart.jsonl"


def prompt_lengths(tok: Any, n: int = 41) -> tuple[list[int], str]:
    from codetune.bench.prompts import LCB_SYSTEM_MESSAGE, lcb_user_prompt

    def lengths_of(path: Path) -> list[int]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        msgs = [
            [
                {"role": "system", "content": LCB_SYSTEM_MESSAGE},
                {
                    "role": "user",
                    "content": lcb_user_prompt(r["question_content"], r.get("starter_code") or ""),
                },
            ]
            for r in rows
        ]
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
        return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]

    if LCB.is_file():
        return lengths_of(LCB), str(LCB.name)
    if LENGTHS_FILE.is_file():
        return json.loads(LENGTHS_FILE.read_text())["lengths"], LENGTHS_FILE.name
    base = lengths_of(QUICKSTART)
    return [base[i % len(base)] for i in range(n)], f"{QUICKSTART.name} x{n / len(base):.1f}"


def sync(cuda: bool) -> None:
    import torch

    if cuda:
        torch.cuda.synchronize()


def plain_generate(model: Any, prompts: list[list[int]], new: int, pad: int) -> Any:
    import torch

    from codetune.bench.speed import left_pad

    ids, mask = left_pad(prompts, pad)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            pad_token_id=pad,
            temperature=None,
            top_p=None,
            top_k=None,
        )
    return out[:, ids.shape[1] :]


def random_adapters(model: Any, folder: Path, n: int) -> list[Path]:
    """`n` LoRA adapters (the study's r=16 on all 7 projections) with random, non-zero B matrices."""
    from codetune.models.tiny import save_random_adapter

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return [
        save_random_adapter(model, folder / f"adapter{i}", targets=targets, r=16, alpha=32, std=0.01)
        for i in range(n)
    ]


def timed_twice(
    once: Callable[[], tuple[list[list[int]], float]], count: Callable[[list[list[int]]], int]
) -> tuple[list[list[int]], dict[str, Any]]:
    """Run `once` twice (the first warms up: compiling, graph capture) and time the second; `count` gives its new
    tokens. Returns its rows and the common result fields."""
    _, warm = once()
    rows, elapsed = once()
    total = count(rows)
    return rows, {
        "problems": len(rows),
        "new_tokens": total,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(total / elapsed, 1),
        "warmup_seconds": round(warm, 1),
    }


def same_start_as_b(opts: argparse.Namespace, rows: list[list[int]]) -> str | None:
    """How many rows begin with the same 32 tokens as path (b)'s (None when (b) did not run)."""
    if not getattr(opts, "b_tokens", None):
        return None
    same = [a[:32] == b[:32] for a, b in zip(opts.b_tokens, rows, strict=True)]
    return f"{sum(same)}/{len(same)}"


def continuous_batching(model: Any, prompts: list[list[int]], opts: argparse.Namespace) -> dict[str, Any]:
    """(e) transformers' own throughput path, `generate_batch`: continuous batching over a paged KV cache, CUDA
    graphs on CUDA; EOS disabled so every prompt gets exactly max_new_tokens. Timed on its second call."""
    from transformers import GenerationConfig
    from transformers.generation import ContinuousBatchingConfig

    cfg = GenerationConfig(
        max_new_tokens=opts.max_new_tokens, do_sample=False, eos_token_id=-1, pad_token_id=opts.pad_id
    )
    # A KV cache that holds every request at once, not 80-90% of the free memory (the paths timed after this one
    # need the GPU's). On a CPU transformers 5.17 also sized the batch's token budget from the host's free memory
    # and took 20 GB of a 24 GB machine for the tiny model; 4,096 tokens a batch keeps it under 1 GB.
    # `page_size` since transformers 5.2x, `block_size` in 5.17
    block = getattr(ContinuousBatchingConfig, "page_size", None) or ContinuousBatchingConfig.block_size
    blocks = sum(-(-(len(p) + opts.max_new_tokens) // block) for p in prompts)
    cb = ContinuousBatchingConfig(num_blocks=blocks + 2, max_batch_tokens=None if opts.cuda else 4096)

    def once() -> tuple[list[list[int]], float]:
        sync(opts.cuda)
        t = time.perf_counter()
        out = model.generate_batch(
            prompts, generation_config=cfg, max_new_tokens=opts.max_new_tokens, continuous_batching_config=cb
        )
        sync(opts.cuda)
        rows = [out[k].generated_tokens for k in sorted(out, key=lambda k: int(k.rsplit("_", 1)[-1]))]
        return rows, time.perf_counter() - t

    rows, result = timed_twice(once, lambda rows: sum(map(len, rows)))
    result["cache"] = f"paged (transformers continuous batching), {cb.num_blocks} blocks of {block} tokens"
    if same := same_start_as_b(opts, rows):
        result["first_32_tokens_same_as_b"] = same
    return result


def run(path: str, model: Any, prompts: list[list[int]], opts: argparse.Namespace) -> dict[str, Any]:
    from codetune.bench.generate_hf import HFGenerator

    cuda, new, pad = opts.cuda, opts.max_new_tokens, opts.pad_id
    if path == "a":
        subset, new = prompts[: opts.serial_problems], opts.serial_new_tokens or new
        plain_generate(model, [subset[0][:32]], 8, pad)  # warm-up
        sync(cuda)
        t = time.perf_counter()
        for p in subset:
            plain_generate(model, [p], new, pad)
        sync(cuda)
        elapsed = time.perf_counter() - t
        return {
            "problems": len(subset),
            "new_tokens": len(subset) * new,
            "seconds": round(elapsed, 2),
            "tokens_per_s": round(len(subset) * new / elapsed, 1),
            "batch": 1,
            "cache": "dynamic",
        }
    if path == "b":
        plain_generate(model, [p[:32] for p in prompts[:4]], 8, pad)  # warm-up
        sync(cuda)
        t = time.perf_counter()
        out = plain_generate(model, prompts, new, pad)
        sync(cuda)
        elapsed = time.perf_counter() - t
        opts.b_tokens = out.tolist()
        return {
            "problems": len(prompts),
            "new_tokens": out.numel(),
            "seconds": round(elapsed, 2),
            "tokens_per_s": round(out.numel() / elapsed, 1),
            "batch": len(prompts),
            "cache": "dynamic",
        }

    if path == "e":
        return continuous_batching(model, prompts, opts)

    from codetune.bench import speed

    if path == "f":  # (c) as it was until session 5: transformers' SDPA, which copies the KV heads per group
        model.set_attn_implementation("sdpa")
        grouped, speed.use_grouped_decode_attention = speed.use_grouped_decode_attention, lambda m: False
    try:
        gen = HFGenerator(
            model,
            opts.tokenizer,
            batch_size=opts.max_batch,
            compile=opts.compile,
            decode_loop=path in ("g", "h"),
        )
        return timed_generator(path, gen, model, prompts, opts)
    finally:
        if path == "f":
            speed.use_grouped_decode_attention = grouped


def timed_generator(
    path: str, gen: Any, model: Any, prompts: list[list[int]], opts: argparse.Namespace
) -> dict[str, Any]:
    from codetune.bench.generate import Decoding

    cuda, new, pad = opts.cuda, opts.max_new_tokens, opts.pad_id
    adapters: list[Any] = [None] * len(prompts)
    if path in ("d", "h"):
        folders = random_adapters(model, Path(opts.adapter_dir), 2)
        adapters = [a for a in (None, *folders) for _ in prompts]
        prompts = prompts * 3

    def once() -> tuple[list[list[int]], float]:
        sync(cuda)
        t = time.perf_counter()
        rows = gen.generate_ids(
            prompts,
            Decoding(max_new_tokens=new),
            adapters=adapters,
            min_new_tokens=new,
            pad_token_id=pad,
            eos_token_id=[opts.eos_id],
        )
        sync(cuda)
        return rows, time.perf_counter() - t

    from torch._dynamo.utils import counters

    counters.clear()
    # min_new_tokens = max_new_tokens: every row decodes exactly `new` steps
    rows, result = timed_twice(once, lambda rows: len(rows) * new)
    result |= {
        "max_batch": opts.max_batch,
        "attention": model.config._attn_implementation,
        "cache": "dynamic (compile failed)"
        if gen._eager
        else "static+compile"
        if cuda or opts.compile
        else "dynamic (CPU)",
    }
    if gen.compile_error:
        result["compile_error"] = gen.compile_error
    # did inductor use CUDA graphs? (TORCH_LOGS=perf_hints prints why it skipped them)
    result["compile"] = {
        "graphs": counters["frames"]["ok"],
        "graph_breaks": sum(counters["graph_break"].values()),
        "cudagraph_skips": counters["inductor"]["cudagraph_skips"],
    }
    if path in ("d", "h"):
        result["models"] = 3
    if path in ("c", "g") and opts.profile:
        from profiling import summarize
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            _, wall = once()
        # one step = one new token for every row (the prefill is spread over the steps)
        result["profile"] = summarize(prof, wall, new, cuda)
    if path in ("c", "f", "g") and (same := same_start_as_b(opts, rows)):
        result["first_32_tokens_same_as_b"] = f"{same} (random weights: near-ties flip)"
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--config", default=None, help="tiny or qwen2.5-coder-1.5b (default: tiny on CPU, 1.5B on CUDA)"
    )
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 1024 (CUDA), 8 (CPU)")
    ap.add_argument("--paths", default="a,b,c,d")
    ap.add_argument(
        "--serial-problems", type=int, default=None, help="problems timed one by one in (a); default 2"
    )
    ap.add_argument(
        "--serial-new-tokens", type=int, default=None, help="new tokens per problem in (a); default max"
    )
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile (c) and (d) (default: on CUDA only; --compile on a CPU rehearses the CUDA path)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="profile one more run of (c) and of (g): where a decoding step's time goes",
    )
    ap.add_argument("--problems", type=int, default=41)
    ap.add_argument("--out", type=Path, default=None)
    opts = ap.parse_args()

    import torch
    import transformers
    from train_throughput import build_model, qwen_tokenizer  # same model configs as the training benchmark

    opts.cuda = torch.cuda.is_available()
    scratch = tempfile.TemporaryDirectory(prefix="codetune-bench-adapters-")
    opts.adapter_dir = scratch.name
    opts.config = opts.config or ("qwen2.5-coder-1.5b" if opts.cuda else "tiny")
    tiny = opts.config == "tiny"
    opts.max_new_tokens = opts.max_new_tokens or (8 if tiny else 1024)
    opts.serial_problems = opts.serial_problems or (1 if tiny else 2)
    tok = opts.tokenizer = qwen_tokenizer()
    lengths, source = prompt_lengths(tok, opts.problems)
    lengths = lengths[: opts.problems]
    model = build_model(
        opts.config, torch.bfloat16 if opts.cuda else torch.float32, "cuda" if opts.cuda else "cpu", 0
    )
    model.eval()
    vocab = model.config.vocab_size
    opts.pad_id = 0 if tiny else tok.convert_tokens_to_ids("<|endoftext|>")
    opts.eos_id = 1 if tiny else tok.convert_tokens_to_ids("<|im_end|>")
    g = torch.Generator().manual_seed(0)
    top = min(vocab, 151643)
    prompts = [
        torch.randint(2, top, (n if not tiny else max(4, n // 16),), generator=g).tolist() for n in lengths
    ]
    report: dict[str, Any] = {
        "benchmark": "generate_throughput",
        "config": opts.config,
        "device": torch.cuda.get_device_name(0) if opts.cuda else "cpu",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "workload": {
            "problems": len(prompts),
            "prompt_lengths_from": source,
            "max_new_tokens": opts.max_new_tokens,
            "prompt_tokens": [min(lengths), max(lengths), round(sum(lengths) / len(lengths))]
            if not tiny
            else "tiny: lengths / 16",
            "greedy": True,
            "min_new_tokens": opts.max_new_tokens,
        },
        "paths": {},
    }
    for path in opts.paths.split(","):
        torch._dynamo.reset()  # every path compiles its own graphs, from transformers' SDPA
        model.set_attn_implementation("sdpa")
        try:
            report["paths"][path] = run(path, model, prompts, opts)
        except Exception as e:
            report["paths"][path] = {
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc()[-2000:],
            }
        gc.collect()
        tps = {p: r.get("tokens_per_s") for p, r in report["paths"].items()}
        pairs = ("c/a", "c/b", "d/c", "e/b", "c/e", "c/f", "g/b", "g/c", "h/d", "h/g")
        report["ratios"] = {
            f"{x}/{y}": round(tps[x] / tps[y], 2)
            for x, y in (pair.split("/") for pair in pairs)
            if tps.get(x) and tps.get(y)
        }
        if opts.out:
            atomic_write_json(opts.out, report)
        print(json.dumps({path: report["paths"][path]}), file=sys.stderr, flush=True)
    scratch.cleanup()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
