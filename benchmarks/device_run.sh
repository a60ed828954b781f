#!/usr/bin/env bash
# Issue 8, one prepared GPU run (< 9.5 minutes): training throughput (then, if time is left, generation), on the
# Qwen2.5-Coder-1.5B architecture (random init). Writes $OUT/train.json (a profile of the CUDA-graph path),
# $OUT/train_extra.json, $OUT/log.txt; if time is left $OUT/generate.json; with MEMORY=1 $OUT/train_memory.json, with
# MEM_PATHS=... $OUT/train_memory_compiled.json.
# Needs the carried wheels in .whl/ (carry=[".whl"]; `bash benchmarks/device_wheels.sh` fetches them).
# Each benchmark has its own timeout and writes its JSON after every path, so one failure loses nothing else.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
PY=${PY:-python3}
CONFIG=${CONFIG:-qwen2.5-coder-1.5b}  # CONFIG=tiny DRY_RUN=1: rehearse the script on a CPU machine (GEN_FLAGS=--compile: with the CUDA generation path)
STEPS=${STEPS:-20}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

echo "== setup $(date -u +%FT%TZ)"
[ -n "${DRY_RUN:-}" ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || echo "pip install of .whl/ failed (rc=$?)"
[ -n "${DRY_RUN:-}" ] || export PYTHONPATH=/tmp/site:$PWD/src
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || nvidia-smi
$PY - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "liger_kernel", "triton", "pyarrow",
             "xxhash", "pandas", "yaml", "pydantic"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as e:
        print(name, "MISSING", type(e).__name__, e)
import torch
if not torch.cuda.is_available():
    sys.exit("no CUDA device")
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
from codetune.train import attention
print("varlen self-test bf16:", attention.varlen_ready("cuda", torch.bfloat16), attention.VARLEN_STATE)
EOF

# Since session 16 (generation's 10x target met, training's 5x not: the host launching ~4,200 kernels a step keeps the
# GPU idle ~40% of it), the run times training first: (a), (c) with CUDA graphs, then (c) itself (the reference); then
# the C++ wrapper and combo kernels; generation (the decoding loop with adapters, h) only if time is left.
# Each training step runs 12 warm-up steps (CUDA-graph paths record one graph per token-row size before replaying).
# A follow-up call on the same warm machine: SKIP_TRAIN=1 EXTRA_PATHS=none GEN_PATHS=b,g (say) times only those;
# MEM_PATHS=peft_compile,... adds the compiled memory breakdown; MEMORY=1 the eager one.
WARMUP=${WARMUP:-12}
if [ -z "${SKIP_TRAIN:-}" ]; then
  echo "== train $(date -u +%FT%TZ) (t=${SECONDS}s)"
  timeout 330 $PY benchmarks/train_throughput.py --config "$CONFIG" --paths "${TRAIN_PATHS:-a,c_graphs,c}" \
    --warmup "$WARMUP" --steps "$STEPS" --profile-steps 3 --profile-path "${PROFILE_PATH:-c_graphs}" \
    --out "$OUT/train.json" > "$OUT/train.stdout.json"
  echo "train exit $? (124 = timeout; partial results are in train.json)"
fi

LEFT=$((540 - SECONDS))
if [ "$LEFT" -gt 75 ] && [ "${EXTRA_PATHS:-}" != none ]; then
  # cppwrapper: kernels launched from C++ (it fails on a CPU: an aoti fallback for pow; on CUDA pow is a Triton
  # kernel); combo: independent small kernels launched as one
  echo "== train, extra paths $(date -u +%FT%TZ) (t=${SECONDS}s, ${LEFT}s left)"
  timeout "$LEFT" $PY benchmarks/train_throughput.py --config "$CONFIG" --paths "${EXTRA_PATHS:-c_cppwrapper,c_combo}" \
    --warmup "$WARMUP" --steps "$STEPS" --no-check --out "$OUT/train_extra.json" > /dev/null
  echo "train_extra exit $?"
fi

if [ -n "${MEMORY:-}" ]; then  # measured in session 5; MEMORY=1 runs it again
  echo "== train memory, PEFT vs lean LoRA $(date -u +%FT%TZ) (t=${SECONDS}s)"
  timeout 90 $PY benchmarks/train_memory.py --config "$CONFIG" --layers 28 --tokens "${MEM_TOKENS:-4096}" --sequences 8 --out "$OUT/train_memory.json" > /dev/null
  echo "train_memory exit $?"
fi

LEFT=$((560 - SECONDS))
if [ "$LEFT" -gt 60 ] && [ "${GEN_PATHS:-}" != none ]; then
  echo "== generate $(date -u +%FT%TZ) (t=${SECONDS}s, ${LEFT}s left)"
  TORCH_LOGS=perf_hints timeout "$LEFT" $PY benchmarks/generate_throughput.py --config "$CONFIG" --max-new-tokens "${NEW_TOKENS:-512}" \
    --paths "${GEN_PATHS:-h,b}" --serial-problems 1 --serial-new-tokens 64 ${GEN_FLAGS:-} \
    --out "$OUT/generate.json" > "$OUT/generate.stdout.json"
  echo "generate exit $?"
fi

LEFT=$((560 - SECONDS))
if [ "$LEFT" -gt 60 ] && [ -n "${MEM_PATHS:-}" ]; then
  # What compiled layers keep for the backward pass, per token and layer (measured on a CPU in session 7 only)
  echo "== train memory, compiled $(date -u +%FT%TZ) (t=${SECONDS}s, ${LEFT}s left)"
  timeout "$LEFT" $PY benchmarks/train_memory.py --config "$CONFIG" --layers 28 --tokens "${MEM_TOKENS:-4096}" --sequences 8 \
    --paths "$MEM_PATHS" --out "$OUT/train_memory_compiled.json" > /dev/null
  echo "train_memory_compiled exit $?"
fi

echo "== summary (t=${SECONDS}s)"
$PY - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for name in ("train.json", "train_memory.json", "generate.json", "train_memory_compiled.json", "train_extra.json"):
    p = out / name
    if not p.is_file():
        print(name, "missing")
        continue
    r = json.loads(p.read_text())
    print(name, r.get("device"), "ratios", r.get("ratios"))
    if name == "train_extra.json" and (out / "train.json").is_file():
        base = json.loads((out / "train.json").read_text())["paths"]
        for path, res in r["paths"].items():
            tps = res.get("real_tokens_per_s")
            for b in ("a", "b", "c"):
                if tps and base.get(b, {}).get("real_tokens_per_s"):
                    print(f"  {path}/{b}", round(tps / base[b]["real_tokens_per_s"], 2))
    for path, res in r.get("paths", {}).items():
        keys = ("real_tokens_per_s", "tokens_per_s", "peak_memory_gib", "mfu", "loss_first_timed_step",
                "micro_batch", "checkpointing", "attention", "lean_lora_patched", "check", "error",
                "saved_bytes_per_token_per_layer", "fwd_bwd_seconds", "cuda_peak_above_weights_gib", "warmup_seconds", "compile",
                "compile_error", "first_32_tokens_same_as_b", "compile_memory_budget", "per_hidden_unit")
        print(" ", path, {k: res[k] for k in keys if k in res})
        if "profile" in res:
            prof = res["profile"]
            print("   profile", {k: v for k, v in prof.items() if k not in ("top", "top_host")})
            for row in prof["top"][:10] + prof.get("top_host", [])[:6]:
                print("    ", row)
EOF
