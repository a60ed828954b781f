#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, the real-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the HTML screenshot test will skip"
fi
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ruff check src tests benchmarks
ruff format --check src tests benchmarks
mypy  # the package, as configured in pyproject.toml
set +e
python -m pytest "$@"
rc=$?
set -e
[ "$rc" = 5 ] && { echo "no tests collected"; exit 1; }
exit "$rc"
