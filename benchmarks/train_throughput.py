"""LoRA training throughput, three paths on the same synthetic data: the study's setup, TRL defaults, codetune.

(a) study: HF Trainer, every sequence padded to max length, fp16 model + fp16 mixed precision, gradient checkpointing;
(b) TRL SFTTrainer defaults: bf16, dynamic padding, gradient checkpointing (TRL's default), TRL's chunked LM-head loss;
(c) codetune: SFTTrainer + `codetune.train.speed.configure_fast_path` (padding-free, flash varlen, memory plan; on
    CUDA compiled decoder layers, else Liger's kernels when installed) + `after_lora` (lean LoRA: dropout masks kept
    as bits when compiled, else redrawn from seeds; the MLP down-projection input recomputed).
All: LoRA r16/alpha32/dropout 0.05 on the 7 projections, 16 sequences per optimizer step (micro-batch 8 x 2 for a
and b; codetune's plan takes up to 16 x 1 when the worst case fits in memory), sequences lognormal around the median
length, clipped, fed in the same order.

Prints JSON: real (non-pad) tokens/s, peak memory, MFU, first timed loss, ratios c/a and c/b.
MFU = model FLOPs on real tokens / time / peak, with, for frozen-base LoRA, per sequence of length s:
  4 * N_mm * s (forward 2N + input-gradient 2N; no weight gradient) + 6 * N_lora * s + 6 * layers * hidden * s^2
  (causal attention: forward 2 s^2 d, backward 4 s^2 d). N_mm counts the linear weights and the LM head.
Checkpointing's recomputed forward is not counted (it is hardware work, not model work).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # profiling.py

from profiling import summarize  # noqa: E402

from codetune.files import atomic_write_json  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1024,
        max_position_embeddings=4096,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
    ),
    # Qwen2.5-Coder-1.5B-Instruct's config.json (random init: no weights needed)
    "qwen2.5-coder-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        hidden_act="silu",
        use_sliding_window=False,
        bos_token_id=151643,
        eos_token_id=151645,
    ),
}
LENGTHS = {"tiny": (32, 8, 64), "qwen2.5-coder-1.5b": (350, 64, 1024)}  # median, min, max
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PEAK_TFLOPS = {"H200": 989, "H100 PCIe": 756, "H100": 989, "A100": 312, "L40S": 362, "A10G": 125, "L4": 121}


def synthetic_sequences(n: int, median: int, lo: int, hi: int, vocab: int, seed: int) -> list[list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(math.log(median), 0.5, n)), lo, hi).astype(int)
    top = min(vocab, 151643)  # below Qwen's special tokens
    return [rng.integers(1, top, size=int(s)).tolist() for s in lengths]


def build_model(name: str, dtype: Any, device: str, seed: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(seed)
    config = Qwen2Config(**CONFIGS[name], pad_token_id=0 if name == "tiny" else 151643)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model


def lora_config() -> Any:
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")


def qwen_tokenizer() -> Any:
    """The Qwen2.5 tokenizer shipped in codetune's assets (read directly: importing codetune.models needs rich)."""
    import gzip
    import shutil

    from transformers import AutoTokenizer

    src = Path(__file__).resolve().parents[1] / "src/codetune/models/assets/qwen2.5-coder-tokenizer"
    with tempfile.TemporaryDirectory(prefix="codetune-bench-tok-") as tmp:
        dest = Path(tmp)
        with gzip.open(src / "tokenizer.json.gz", "rb") as f, open(dest / "tokenizer.json", "wb") as out:
            shutil.copyfileobj(f, out)
        for name in ("tokenizer_config.json", "chat_template.jinja"):
            shutil.copy(src / name, dest / name)
        return AutoTokenizer.from_pretrained(dest)


def tokenizer_for(name: str) -> Any:
    tok = qwen_tokenizer()
    tok.pad_token = tok.convert_ids_to_tokens(0) if name == "tiny" else "<|endoftext|>"
    return tok


class Counting:
    """Wraps a collator and records each micro-batch's real sequence lengths (calls come in training order)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.batches = inner, []

    def __call__(self, rows: list[dict]) -> dict:
        out = self.inner(rows)
        self.batches.append([len(r["input_ids"]) for r in rows])
        return out


def pad_to_max_collator(max_length: int, pad_id: int) -> Any:
    import torch

    def collate(rows: list[dict]) -> dict:
        ids = torch.full((len(rows), max_length), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            s = r["input_ids"][:max_length]
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}

    return collate


def timer_callback(warmup: int, steps: int, cuda: bool) -> Any:
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.marks: dict[int, float] = {}
            self.first_loss: float | None = None

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            # Synchronize only at the two marks: a sync every step would stop the host from queueing ahead, which
            # training does not do (until session 5 it did, on every path).
            if state.global_step in (warmup, warmup + steps):
                if cuda:
                    torch.cuda.synchronize()
                self.marks[state.global_step] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
            if state.global_step == warmup + 1 and logs and "loss" in logs:
                self.first_loss = float(logs["loss"])

    return StepTimer()


def profile_callback(start: int, steps: int, cuda: bool, top: int = 15) -> Any:
    """torch.profiler over optimizer steps start+1 .. start+steps; `summary`: wall and device-busy ms per step (busy =
    the kernels' own time, so busy/wall < 1 means the GPU waits on the host) and the top ops by own device (or CPU)
    time per step."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class StepProfiler(TrainerCallback):
        def __init__(self) -> None:
            self.prof: Any = None
            self.summary: dict[str, Any] = {}
            self.t0 = 0.0

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            if not steps or state.global_step not in (start, start + steps):
                return
            if cuda:
                torch.cuda.synchronize()
            if state.global_step == start:
                activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
                self.prof = profile(activities=activities)
                self.prof.__enter__()
                self.t0 = time.perf_counter()
                return
            wall = time.perf_counter() - self.t0
            self.prof.__exit__(None, None, None)
            self.summary = summarize(self.prof, wall, steps, cuda, top)

    return StepProfiler()


def model_flops(name: str, lengths: list[int]) -> float:
    c = CONFIGS[name]
    d, inter, layers, vocab = (
        c["hidden_size"],
        c["intermediate_size"],
        c["num_hidden_layers"],
        c["vocab_size"],
    )
    kv = d // c["num_attention_heads"] * c["num_key_value_heads"]
    per_layer = d * (d + 2 * kv) + d * d + 3 * d * inter
    n_mm = layers * per_layer + vocab * d
    lora = layers * 16 * ((d + d) + 2 * (d + kv) + (d + d) + 2 * (d + inter) + (inter + d))
    return sum((4 * n_mm + 6 * lora) * s + 6 * layers * d * s * s for s in lengths)


def peak_flops(device_name: str) -> float | None:
    for key, tflops in PEAK_TFLOPS.items():
        if key in device_name:
            return tflops * 1e12
    return None


def robust_hashing() -> None:
    """datasets fingerprints datasets by pickling them; on some stacks (seen: the H200 image, Python 3.12 with
    carried wheels) dill cannot pickle a pyarrow type and raises. A fingerprint only names cache files, so fall
    back to a random one instead of failing the benchmark."""
    import datasets.fingerprint as fp

    orig_update = fp.Hasher.update

    def update(self: Any, value: Any) -> None:
        try:
            orig_update(self, value)
        except Exception:
            orig_update(self, fp.generate_random_fingerprint())

    fp.Hasher.update = update
    orig_hash = fp.Hasher.hash.__func__

    def hash_(cls: Any, value: Any) -> str:
        try:
            return orig_hash(cls, value)
        except Exception:
            return fp.generate_random_fingerprint()

    fp.Hasher.hash = classmethod(hash_)


def path_budget(words: set[str] | list[str]) -> float:
    """The compiler memory budget a path's name asks for: budgetNN is NN% (default 1.0)."""
    return next((int(w[6:]) / 100 for w in words if w.startswith("budget") and w[6:].isdigit()), 1.0)


def run_path(path: str, opts: argparse.Namespace, seqs: list[list[int]], tok: Any) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from torch.utils.data import SequentialSampler
    from transformers import PrinterCallback, Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    from codetune.train.config import TrainConfig
    from codetune.train.speed import after_lora, configure_fast_path, training_context

    cuda = opts.device.startswith("cuda")
    words = set(path.split("_"))
    timed_end = opts.warmup + opts.steps
    profiled = opts.profile_steps if path == opts.profile_path else 0
    # Profiled steps come after the timed ones and do not count in their time.
    steps_total = timed_end + profiled
    data = Dataset.from_dict({"input_ids": seqs[: steps_total * 16]})
    out_dir = tempfile.mkdtemp(prefix=f"{path}-", dir=opts.scratch)
    common = dict(
        output_dir=out_dir,
        max_steps=steps_total,
        learning_rate=1e-4,
        # The loss is logged (a host sync) at the first timed step and then every warmup + 1 steps, not every step
        # (the study logs every 20 steps, TRL every 10).
        logging_steps=opts.warmup + 1,
        save_strategy="no",
        report_to="none",
        seed=opts.seed,
        disable_tqdm=True,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        use_cpu=not cuda,
    )
    timer = timer_callback(opts.warmup, opts.steps, cuda)
    profiler = profile_callback(timed_end, profiled, cuda)
    info: dict[str, Any] = {}
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if path == "a":
        dtype = torch.float16 if cuda else torch.float32
        model = build_model(opts.config, dtype, opts.device, opts.seed)
        model.enable_input_require_grads()
        from peft import get_peft_model

        model = get_peft_model(model, lora_config())
        args = TrainingArguments(**common, fp16=cuda, gradient_checkpointing=True)
        collator = Counting(pad_to_max_collator(opts.max_length, tok.pad_token_id))
        trainer = Trainer(
            model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[timer, profiler]
        )
        info.update(dtype=str(dtype), checkpointing=True, padding="max_length")
    else:
        dtype = torch.bfloat16 if cuda else torch.float32
        model = build_model(opts.config, dtype, opts.device, opts.seed)
        kwargs = dict(common, bf16=cuda, max_length=opts.max_length)
        if path.startswith("c"):
            # c: codetune's defaults, as `codetune train` runs them (micro-batch up to 16, as in
            # experiments/deep_vs_diverse.yaml, lowered by the memory plan if it must be). Variants, by the words in
            # the path name: eager (no torch.compile: Liger's kernels when installed, lean LoRA's masks from seeds;
            # the CUDA default before session 5), compile (compiled layers even on a CPU), noliger, peft (PEFT's LoRA
            # forward instead of the lean one), mb8 (at most 8 sequences per micro-batch), budgetNN (the compiler
            # keeps NN% of the activations), cppwrapper (inductor's C++ wrapper: kernels launched from C++ instead of
            # generated Python, less host time per kernel), combo (inductor's combo kernels: independent small
            # kernels launched as one), graphs (`train.cuda_graphs`: layers compiled with mode="reduce-overhead",
            # the token row filled up to a multiple of 1,024 so that a few graphs, one per size, replay).
            cfg = TrainConfig(
                micro_batch_size=8 if "mb8" in words else 16,
                effective_batch_size=16,
                max_length=opts.max_length,
                padding_free="on",
                compile="off" if "eager" in words else "on" if "compile" in words else "auto",
                liger_kernel="off" if "noliger" in words else "auto",
                lean_lora="off" if "peft" in words else "auto",
                compile_memory_budget=path_budget(words),
                cuda_graphs="graphs" in words,
            )
            kwargs.update(configure_fast_path(model, cfg, opts.device))
            info.update(model.codetune_fast_path)
        args = SFTConfig(**kwargs)
        info.update(
            dtype=str(dtype), checkpointing=bool(args.gradient_checkpointing), liger=args.use_liger_kernel
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tok,
            peft_config=lora_config(),
            callbacks=[timer, profiler],
        )
        info["lean_lora_patched"] = after_lora(trainer.model)
        if path.startswith("c"):
            info["compiled_layers"] = trainer.model.codetune_fast_path.get("compiled_layers", 0)
        collator = trainer.data_collator = Counting(trainer.data_collator)
    trainer.remove_callback(PrinterCallback)
    trainer._get_train_sampler = lambda *a, **k: SequentialSampler(data)
    from torch._dynamo.utils import counters

    counters.clear()
    accum = trainer.args.gradient_accumulation_steps
    info.update(micro_batch=trainer.args.per_device_train_batch_size, grad_accum=accum)
    inductor = {"cpp_wrapper": "cppwrapper" in words, "combo_kernels": "combo" in words}
    with training_context(trainer.model), torch._inductor.config.patch(inductor):
        trainer.train()
    elapsed = timer.marks[timed_end] - timer.marks[opts.warmup]
    timed = [s for b in collator.batches[opts.warmup * accum : timed_end * accum] for s in b]
    real = sum(timed)
    padded = sum(
        (opts.max_length if path == "a" else max(b)) * len(b)
        for b in collator.batches[opts.warmup * accum : timed_end * accum]
    )
    peak = peak_flops(opts.device_name)
    result = {
        **info,
        "timed_steps": opts.steps,
        "sequences_timed": len(timed),
        "seconds": round(elapsed, 3),
        "real_tokens_per_s": round(real / elapsed, 1),
        "padded_fraction": round(1 - real / padded, 3) if not path.startswith("c") else 0.0,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "mfu": round(model_flops(opts.config, timed) / elapsed / peak, 4) if peak else None,
        "loss_first_timed_step": timer.first_loss,
    }
    # compiled frames, recompiles included: more than a handful means the shapes churn
    if counters["frames"]["ok"]:
        result["compile"] = {
            "frames": counters["frames"]["ok"],
            "graph_breaks": sum(counters["graph_break"].values()),
            "cudagraph_skips": counters["inductor"]["cudagraph_skips"],
        }
    if profiled:
        result["profile"] = profiler.summary
    if path == "c" and opts.check:
        from codetune.train.unpad import compare_paths

        result["check"] = compare_paths(trainer.model, [s[:300] for s in seqs[:4]], tok.pad_token_id)
    if "graphs" in words and opts.check:
        try:  # a failing check must not lose the path's timing
            result["graph_check"] = graph_check(trainer.model, seqs[:16], tok.pad_token_id)
        except Exception as e:
            result["graph_check"] = {"error": f"{type(e).__name__}: {str(e)[:500]}"}
    del trainer, model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def graph_check(model: Any, seqs: list[list[int]], pad_id: int) -> dict[str, float]:
    """The LoRA gradients of one batch through the CUDA-graph layers (warm-up, record, two replays; then two
    micro-batches accumulated) against the same layers run eagerly, dropout off: a replay that reused memory still in
    use would show here, not in the loss."""
    import torch

    from codetune.train.unpad import padded_batch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = padded_batch(model, seqs, pad_id)
    device = batch["input_ids"].device
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(micro_batches: int = 1) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        # more than one micro-batch: gradients accumulate, as with gradient_accumulation_steps
        for _ in range(micro_batches):
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                model(**batch).loss.backward()
        return [p.grad.float().clone() / micro_batches for p in params]

    model.train()
    runs = [grads() for _ in range(4)]
    accumulated = grads(2)
    with torch.compiler.set_stance("force_eager"):
        eager = grads()

    def worst(got: list[torch.Tensor]) -> float:
        return max(
            ((g - e).norm() / e.norm()).item() for g, e in zip(got, eager, strict=True) if e.norm() > 0
        )

    return {
        "lora_grad_rel_diff_max": round(worst(runs[-1]), 5),
        "replays_rel_diff_max": round(worst(runs[2]), 5),
        "accumulated_rel_diff_max": round(worst(accumulated), 5),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--config", choices=sorted(CONFIGS), default=None, help="default: tiny on CPU, 1.5B on CUDA"
    )
    ap.add_argument(
        "--paths",
        default="a,b,c",
        help="comma list, run in this order: a, b, c, and c variants named by words: eager, compile, noliger, peft, "
        "mb8, budgetNN (compiled: keep NN%% of the activations), cppwrapper (inductor's C++ wrapper), combo (combo "
        "kernels), graphs (CUDA graphs, token rows filled to a multiple of 1,024); e.g. c_eager, c_peft, "
        "c_peft_budget50",
    )
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3; 1 for tiny)")
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer steps (default 30; 3 for tiny)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile-steps", type=int, default=0, help="profile this many extra steps of one path")
    ap.add_argument("--profile-path", default="c", help="the path --profile-steps profiles")
    ap.add_argument(
        "--check", action=argparse.BooleanOptionalAction, default=True, help="packed vs padded check"
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here (after every path)")
    opts = ap.parse_args()

    import torch
    import transformers
    import trl

    cuda = torch.cuda.is_available()
    opts.device = "cuda" if cuda else "cpu"
    opts.config = opts.config or ("qwen2.5-coder-1.5b" if cuda else "tiny")
    opts.device_name = torch.cuda.get_device_name(0) if cuda else "cpu"
    tiny = opts.config == "tiny"
    opts.warmup = opts.warmup if opts.warmup is not None else (1 if tiny else 3)
    opts.steps = opts.steps if opts.steps is not None else (3 if tiny else 30)
    median, lo, hi = LENGTHS[opts.config]
    opts.max_length = hi
    vocab = CONFIGS[opts.config]["vocab_size"]
    robust_hashing()
    seqs = synthetic_sequences(
        (opts.warmup + opts.steps + opts.profile_steps) * 16, median, lo, hi, vocab, opts.seed
    )
    tok = tokenizer_for(opts.config)
    report: dict[str, Any] = {
        "benchmark": "train_throughput",
        "config": opts.config,
        "device": opts.device_name,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
        "data": {"sequences": len(seqs), "median": median, "clip": [lo, hi], "sigma": 0.5, "seed": opts.seed},
        "peak_tflops": (peak_flops(opts.device_name) or 0) / 1e12 or None,
        "mfu_formula": "per sequence of s real tokens: 4*N_mm*s + 6*N_lora*s + 6*layers*hidden*s^2; / time / peak",
        "paths": {},
    }
    scratch = tempfile.TemporaryDirectory(prefix="codetune-bench-train-")
    opts.scratch = scratch.name
    for path in opts.paths.split(","):
        torch._dynamo.reset()  # compiled graphs of one path must not serve the next
        try:
            report["paths"][path] = run_path(path, opts, seqs, tok)
        except Exception as e:  # one failing path must not lose the others
            report["paths"][path] = {
                "error": f"{type(e).__name__}: {e}",
                "traceback": (lambda t: t[:1500] + " ... " + t[-1500:])(traceback.format_exc()),
            }
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
        report["ratios"] = ratios(report["paths"])
        if opts.out:
            atomic_write_json(opts.out, report)
        print(json.dumps({path: report["paths"][path]}), file=sys.stderr, flush=True)
    scratch.cleanup()
    print(json.dumps(report, indent=2))


def ratios(paths: dict[str, dict]) -> dict[str, float | None]:
    def tps(p: str) -> float | None:
        return paths.get(p, {}).get("real_tokens_per_s")

    out = {}
    for fast in [p for p in paths if p.startswith("c")]:
        for base in ("a", "b", "c"):
            if fast != base and tps(fast) and tps(base):
                out[f"{fast}/{base}"] = round(tps(fast) / tps(base), 2)
    return out


if __name__ == "__main__":
    main()
