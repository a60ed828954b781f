#!/usr/bin/env bash
# Create .venv (if missing) with the CPU build of torch and codetune installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
PINS=(-c scripts/constraints.txt)  # the versions the tests last passed with
[ -z "${CODETUNE_UNPINNED:-}" ] || PINS=()
if ! python -c "import torch" 2>/dev/null; then
  # The CPU build; other versions pull GBs of CUDA wheels. Users with a GPU may install their own torch first.
  pip install -q "${PINS[@]}" "torch==${CODETUNE_TORCH_VERSION:-2.13.0}"
fi
pip install -q "${PINS[@]}" -e ".[dev]"
