"""Activation memory of LoRA training per token and decoder layer: PEFT's LoRA vs codetune's lean LoRA (masks redrawn
from seeds, or kept packed in bits: `lean_bits`), same run. A path ending in `_compile` runs
torch.compile'd decoder layers (as codetune's CUDA default does); `_budgetNN` then lets the compiler keep at most NN% of
the activations it would keep by default (torch._functorch.config.activation_memory_budget).

Counts the bytes autograd keeps for the backward pass inside the decoder layers (distinct storages, parameters
excluded) over one forward of `--tokens` real tokens, with the Qwen2.5-Coder-1.5B layer shapes (`--layers` of them,
random init) and LoRA r16/alpha32/dropout 0.05 on the 7 projections. On CUDA: bf16 weights under bf16 autocast, as the
Trainer runs them, plus the peak allocated memory of forward + backward. On a CPU: fp32 and a 2,048-word vocabulary
(the layers' activations do not depend on it), as bf16 matmuls are slow there; `--dtype bfloat16` measures the GPU
setting on a CPU. Device-independent accounting otherwise. Times forward + backward (median of `--repeats`). Prints
JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from train_throughput import CONFIGS, lora_config, path_budget  # noqa: E402

from codetune.files import atomic_write_json  # noqa: E402


def forward(model: Any, ids: Any, dtype: str) -> Any:
    """The loss of one forward pass, under bf16 autocast when `dtype` is bfloat16, without a KV cache (as TRL runs it)."""
    import torch

    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        return model(input_ids=ids, labels=ids, use_cache=False).loss


def fwd_bwd_seconds(model: Any, ids: Any, dtype: str, repeats: int) -> float:
    """Median time of forward + backward over `repeats` runs after one warm-up run."""
    import torch

    times = []
    for _ in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        if ids.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        forward(model, ids, dtype).backward()
        if ids.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def matmuls(model: Any, ids: Any, dtype: str) -> int:
    """Matrix multiplications (aten mm/addmm/bmm calls, compiled graphs' included) in one forward + backward: more
    than another path's means the backward pass recomputes a projection."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward(model, ids, dtype).backward()
    names = ("aten::mm", "aten::addmm", "aten::bmm")
    return sum(e.count for e in prof.key_averages() if e.key in names)


def run_path(path: str, opts: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    from codetune.train import lean_lora

    config = dict(CONFIGS[opts.config], num_hidden_layers=opts.layers)
    if opts.vocab:  # the layers' activations do not depend on it; the LM head's time does
        config.update(vocab_size=opts.vocab, bos_token_id=None, eos_token_id=1)
    torch.manual_seed(opts.seed)
    with torch.device(opts.device):
        model = AutoModelForCausalLM.from_config(
            Qwen2Config(**config, pad_token_id=0),
            dtype=getattr(torch, opts.dtype),
            attn_implementation="sdpa",
        )
    model = get_peft_model(model, lora_config())
    model.train()
    words = path.split("_")
    masks = next((w for w in words if w in lean_lora.MASKS), "seed")
    patched = lean_lora.make_lean(model, masks=masks) if words[0] == "lean" else None
    gen = torch.Generator().manual_seed(opts.seed)
    ids = torch.randint(
        10, config["vocab_size"], (opts.sequences, opts.tokens // opts.sequences), generator=gen
    )
    ids = ids.to(opts.device)
    layers = model.get_base_model().model.layers
    budget = path_budget(words)
    if "compile" in words:
        torch._dynamo.reset()  # each path compiles afresh, under its own budget
        for layer in layers:
            layer.compile(dynamic=True)
    with torch._functorch.config.patch(activation_memory_budget=budget):
        return measure(model, ids, layers, config, opts, patched)


def measure(model: Any, ids: Any, layers: Any, config: dict, opts: argparse.Namespace, patched: Any) -> dict:
    import torch

    from codetune.train.memory import saved_activation_bytes

    tokens = ids.numel()
    if getattr(layers[0], "_compiled_call_impl", None) is not None:  # compile outside the measured forward
        forward(model, ids, opts.dtype).backward()
    saved = saved_activation_bytes(model, lambda: forward(model, ids, opts.dtype), within=layers)
    if ids.is_cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    result: dict[str, Any] = {
        "saved_bytes_per_token_per_layer": round(saved / tokens / opts.layers),
        "per_hidden_unit": round(saved / tokens / opts.layers / config["hidden_size"], 1),
        "fwd_bwd_seconds": round(fwd_bwd_seconds(model, ids, opts.dtype, opts.repeats), 3),
        "matmuls": matmuls(model, ids, opts.dtype),
        "patched": patched,
    }
    if ids.is_cuda:  # every timed run is the same forward + backward: the peak is one run's
        result["cuda_peak_above_weights_gib"] = round((torch.cuda.max_memory_allocated() - before) / 2**30, 3)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="qwen2.5-coder-1.5b")
    ap.add_argument(
        "--layers", type=int, default=2, help="decoder layers built (per-layer figures are averages)"
    )
    ap.add_argument(
        "--vocab", type=int, default=None, help="smaller vocabulary (default: the config's; 2,048 on a CPU)"
    )
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument(
        "--dtype",
        choices=["bfloat16", "float32"],
        default=None,
        help="default: bfloat16 on CUDA; float32 on a CPU (bf16 matmuls are ~5x slower on an AVX2 CPU)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--paths",
        default="peft,lean,lean_bits",
        help="comma list: peft, lean, lean_bits, each optionally + _compile (+ _budgetNN)",
    )
    ap.add_argument("--out", type=Path, default=None)
    opts = ap.parse_args()
    import torch

    opts.device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cpu = opts.device == "cpu"
    opts.dtype = opts.dtype or ("float32" if cpu else "bfloat16")
    opts.vocab = opts.vocab or (2048 if cpu else None)
    name = torch.cuda.get_device_name(0) if opts.device.startswith("cuda") else "cpu"
    report: dict[str, Any] = {"device": name, "torch": torch.__version__, **vars(opts), "paths": {}}
    report["out"] = str(opts.out) if opts.out else None
    for path in opts.paths.split(","):
        report["paths"][path] = run_path(path, opts)
        gc.collect()  # the path's model, before the next one is built
    paths = report["paths"]
    report["ratios"] = {}
    for path, res in paths.items():
        base = "peft_compile" if "compile" in path else "peft"
        if path != base and base in paths:
            ref = paths[base]
            report["ratios"][f"saved_bytes_{path}_over_{base}"] = round(
                res["saved_bytes_per_token_per_layer"] / ref["saved_bytes_per_token_per_layer"], 3
            )
            report["ratios"][f"time_{path}_over_{base}"] = round(
                res["fwd_bwd_seconds"] / ref["fwd_bwd_seconds"], 3
            )
    if opts.out:
        atomic_write_json(opts.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
