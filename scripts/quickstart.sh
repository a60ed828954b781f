#!/usr/bin/env bash
# Set up (if needed) and run the embedded default experiment: offline 0.5B model, shipped Deep/Diverse
# samples and the shipped benchmark. Extra arguments go to `codetune run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
codetune run "$@"
