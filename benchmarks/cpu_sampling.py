"""Drawing a sampled token on a CPU: `decode.pick` (sort the whole vocabulary) against `decode.pick_eager` (rank only
the k most likely tokens when they hold the top-p nucleus), on real next-token scores.

Loads a real model (default: the offline catalog's Qwen2.5-Coder-0.5B-Instruct), runs one forward pass over a
model-written answer to a shipped problem (the study prompt, then the model's own greedy continuation, so the scores
are those of decoding code), and takes --rows positions' scores as a batch. Prints JSON: milliseconds per draw for
each function at --temperature / --top-p, their ratio, and the share of all positions where the k most likely
tokens hold the nucleus (where `pick_eager` takes its fast path; else it falls back to `pick`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def per_call_ms(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="catalog name, .gguf, HF folder")
    ap.add_argument("--rows", type=int, default=32, help="batch rows (positions) per draw")
    ap.add_argument("--answer-tokens", type=int, default=256, help="greedy answer length to score")
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()

    import torch

    from codetune.bench.config import BenchConfig
    from codetune.bench.decode import NUCLEUS_K, pick, pick_eager
    from codetune.bench.problems import load_problems
    from codetune.bench.prompts import build_messages, render_prompt
    from codetune.models.load import load_model

    model, tok = load_model(args.model, dtype=torch.float32)
    problem = load_problems("builtin:quickstart")[0]
    prompt = render_prompt(build_messages(problem, "study", BenchConfig().system_prompt), tok)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        full = model.generate(ids, max_new_tokens=args.answer_tokens, do_sample=False)
        logits = (
            model(full).logits[0, ids.shape[1] - 1 : -1].float()
        )  # the scores each answer token was drawn from
    scaled = logits / args.temperature
    probs = (scaled.topk(NUCLEUS_K, dim=-1).values - scaled.logsumexp(-1, keepdim=True)).exp()
    fast_share = float((probs.sum(-1) >= args.top_p).float().mean())
    rows = logits[torch.linspace(0, len(logits) - 1, args.rows).long()].contiguous()

    t, p = args.temperature, args.top_p
    sort_ms = per_call_ms(lambda: pick(rows, t, p), args.repeats)
    topk_ms = per_call_ms(lambda: pick_eager(rows, t, p), args.repeats)
    result = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "rows": args.rows,
        "vocab": rows.shape[-1],
        "temperature": t,
        "top_p": p,
        "k": NUCLEUS_K,
        "positions_scored": len(logits),
        "share_of_positions_where_top_k_holds_the_nucleus": round(fast_share, 4),
        "pick_ms": round(sort_ms, 2),
        "pick_eager_ms": round(topk_ms, 2),
        "speedup": round(sort_ms / topk_ms, 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
