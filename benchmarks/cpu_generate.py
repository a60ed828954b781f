"""Generation on a CPU, as `codetune eval` runs it there, against what it replaced, all paths in one process.

Loads a real model (default: the offline catalog's Qwen2.5-Coder-0.5B-Instruct, float32), renders the first
--problems problems of a LiveCodeBench file (default: the shipped quickstart set) with --prompt-style (lcb or study),
and generates greedily through `HFGenerator.generate_ids` in batches of --batch-size, once per path:
(mkl) transformers' `generate` with every linear layer through `F.linear` (MKL's GEMM), as before
`codetune.bench.cpu_linear`;
(onednn) `generate` with decoding steps' linear layers through oneDNN (`cpu_linear.onednn_linears`);
(continuous) oneDNN and codetune's continuous batching (`bench/continuous.py`: a finished row leaves the batch and a
waiting prompt takes its place), what `codetune eval` now does on a CPU;
(catcache) the same with transformers' `DynamicLayer` KV cache, which concatenates (copies the whole cache) at every
step, as continuous batching did before its cache layers grew in place.
Every path generates at least --min-new-tokens per row (64 compares kernels without short answers hiding the
decoding cost; 0 lets rows end where the model ends them, which is what the continuous path is for). Prints JSON: new
tokens/s per path (all, and decoding only: less the prefill, timed alone), the ratios onednn/mkl and continuous/onednn,
and how many rows' tokens equal the first path's (other kernels sum in another order, so a near-tie can flip a
greedy token).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from codetune.files import atomic_write_json  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct", help="catalog name, .gguf, HF folder")
    ap.add_argument("--problems-file", default="builtin:quickstart")
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--min-new-tokens", type=int, default=64)
    ap.add_argument("--prompt-style", default="lcb", choices=["lcb", "study"])
    ap.add_argument("--no-prefill-timing", action="store_true", help="skip timing each path's prefill alone")
    ap.add_argument(
        "--paths", default="mkl,onednn,continuous", help="comma-separated; PATH@N runs PATH at batch size N"
    )
    ap.add_argument("--out", type=Path, default=None)
    opts = ap.parse_args()

    import torch
    from transformers.cache_utils import DynamicLayer

    from codetune.bench import continuous, cpu_linear
    from codetune.bench.generate import Decoding
    from codetune.bench.generate_hf import HFGenerator
    from codetune.bench.problems import load_problems
    from codetune.bench.prompts import build_messages, render_prompt
    from codetune.data.config import STUDY_SYSTEM_PROMPT
    from codetune.models.load import load_model

    t0 = time.perf_counter()
    model, tok = load_model(opts.model, device="cpu", quiet=True)
    load_s = time.perf_counter() - t0
    problems = load_problems(opts.problems_file)[: opts.problems]
    system = STUDY_SYSTEM_PROMPT if opts.prompt_style == "study" else ""
    prompts = [
        tok(render_prompt(build_messages(p, opts.prompt_style, system), tok), add_special_tokens=False)[
            "input_ids"
        ]
        for p in problems
    ]
    decoding = Decoding(max_new_tokens=opts.max_new_tokens)
    report: dict[str, Any] = {
        "benchmark": "cpu_generate",
        "device": f"cpu: {cpu_name()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "model": opts.model,
        "model_load_s": round(load_s, 1),
        "onednn_available": cpu_linear.available(),
        "workload": {
            "problems": len(prompts),
            "prompt_tokens": [min(map(len, prompts)), max(map(len, prompts))],
            "batch_size": opts.batch_size,
            "new_tokens": [opts.min_new_tokens, opts.max_new_tokens],
            "greedy": True,
            "prompt_style": opts.prompt_style,
        },
        "paths": {},
    }
    outputs: dict[str, list[list[int]]] = {}
    growing = continuous._growing_layer_class
    for path in opts.paths.split(","):
        kind, _, batch = path.partition("@")
        cpu_linear.ENABLED = kind != "mkl"
        continuous._growing_layer_class = (lambda: DynamicLayer) if kind == "catcache" else growing
        gen = HFGenerator(
            model, tok, int(batch or opts.batch_size), continuous=kind in ("continuous", "catcache")
        )
        t0 = time.perf_counter()
        if not opts.no_prefill_timing:
            gen.generate_ids(prompts, Decoding(max_new_tokens=1))
        prefill = None if opts.no_prefill_timing else time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = gen.generate_ids(prompts, decoding, min_new_tokens=opts.min_new_tokens)
        seconds = time.perf_counter() - t0
        new = sum(map(len, ids))
        outputs[path] = ids
        report["paths"][path] = {
            "batch_size": gen.batch_size,
            "seconds": round(seconds, 2),
            "new_tokens": new,
            "tokens_per_s": new / seconds,
            # the same prompts' prefill and first token, timed alone: the rest is decoding
            "prefill_seconds": None if prefill is None else round(prefill, 2),
            "decode_tokens_per_s": None if prefill is None else (new - len(ids)) / (seconds - prefill),
        }
        print(json.dumps({path: report["paths"][path]}), file=sys.stderr, flush=True)
    paths = report["paths"]
    for new_path, old_path in (("onednn", "mkl"), ("continuous", "onednn"), ("continuous", "catcache")):
        if {new_path, old_path} <= set(outputs):
            report[f"ratio_{new_path}_{old_path}_seconds"] = round(
                paths[old_path]["seconds"] / paths[new_path]["seconds"], 2
            )
            if new_path == "onednn":  # same tokens per row: the token rates compare
                for key in ("tokens_per_s", "decode_tokens_per_s"):
                    report[f"ratio_onednn_mkl_{key}"] = round(paths["onednn"][key] / paths["mkl"][key], 2)
    first = next(iter(outputs.values()), [])
    base = next(iter(paths.values()), {}).get("seconds")
    report["speedup_vs_first_path"] = {path: round(base / v["seconds"], 2) for path, v in paths.items()}
    for path, ids in outputs.items():
        paths[path]["rows_equal_to_first_path"] = (
            f"{sum(a == b for a, b in zip(first, ids, strict=True))}/{len(ids)}"
        )
    if opts.out:
        atomic_write_json(opts.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
